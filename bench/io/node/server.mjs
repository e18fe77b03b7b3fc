// server.mjs - the Node.js peer of bench/io/run.sh: the event-loop program a
// user would write instead of a Kiln function. One process (Node's single
// event loop), node:http in front, and for every request one `fetch` (Node's
// built-in undici client, global dispatcher, keep-alive) to the upstream,
// whose body becomes the answer. No packages.
//
//   node server.mjs UPSTREAM_URL [PORT]      (PORT 0 or absent: any free port)
//
// Prints "listening on http://127.0.0.1:PORT" on stdout once ready.
import http from 'node:http';

const [upstream, portArg] = process.argv.slice(2);
if (!upstream) {
    console.error('usage: node server.mjs UPSTREAM_URL [PORT]');
    process.exit(2);
}

const server = http.createServer(async (req, res) => {
    try {
        const r = await fetch(upstream);
        const body = Buffer.from(await r.arrayBuffer());
        res.writeHead(r.status, {
            'Content-Type': r.headers.get('content-type') ?? 'application/octet-stream',
            'Content-Length': body.length,
        });
        res.end(body);
    } catch (err) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`${err}\n`);
    }
});
// Keep-alive connections stay open for the whole wrk run.
server.keepAliveTimeout = 60000;
server.listen(Number(portArg || 0), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
