// server.mjs - the Node.js + Extism peer of bench/http/run.sh: node:http
// running the same Extism greet plugin as `kiln serve`, through the official
// JavaScript SDK (@extism/extism 2.x, pinned in package-lock.json).
//
//   node server.mjs GREET.wasm [PORT]      (PORT 0 or absent: any free port)
//
// Routes, both POST, body in, plugin output out:
//   /greet        one plugin for the whole process (what Extism users do;
//                 calls run one at a time on the event loop)
//   /greet-fresh  a plugin per request, from a WebAssembly.Module compiled
//                 once at start-up (the closest match to Kiln's model)
// Prints "listening on http://127.0.0.1:PORT" on stdout once ready.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import createPlugin from '@extism/extism';

const [file, portArg] = process.argv.slice(2);
if (!file) {
    console.error('usage: node server.mjs GREET.wasm [PORT]');
    process.exit(2);
}
const module = await WebAssembly.compile(readFileSync(file));
const manifest = { wasm: [{ module }] };
const options = { useWasi: false };
const shared = await createPlugin(manifest, options);

async function greetShared(input) {
    const out = await shared.call('greet', input);
    return out === null ? new Uint8Array(0) : out.bytes();
}

async function greetFresh(input) {
    const plugin = await createPlugin(manifest, options);
    try {
        const out = await plugin.call('greet', input);
        return out === null ? new Uint8Array(0) : out.bytes();
    } finally {
        await plugin.close();
    }
}

const routes = { '/greet': greetShared, '/greet-fresh': greetFresh };

const server = http.createServer((req, res) => {
    const handler = routes[req.url];
    if (handler === undefined || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        handler(new Uint8Array(Buffer.concat(chunks))).then(
            (body) => {
                res.writeHead(200, { 'Content-Length': body.length });
                res.end(body);
            },
            (err) => {
                res.writeHead(500, { 'Content-Type': 'text/plain' });
                res.end(String(err));
            },
        );
    });
});
// Keep-alive connections stay open for the whole wrk run.
server.keepAliveTimeout = 60000;
server.listen(Number(portArg || 0), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
