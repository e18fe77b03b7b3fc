// cgi_as.ts - a WASI-CGI guest in AssemblyScript (with @assemblyscript/wasi-shim):
// answers "hello <name> from AssemblyScript" for /.../:name routes (X_PARAM_NAME),
// echoes the method and the request body it reads from stdin.
const name = process.env.has("X_PARAM_NAME") ? process.env.get("X_PARAM_NAME") : "world";
const method = process.env.has("REQUEST_METHOD") ? process.env.get("REQUEST_METHOD") : "?";

let body = "";
const buf = new ArrayBuffer(4096);
for (;;) {
  const n = process.stdin.read(buf);
  if (n <= 0) break;
  body += String.UTF8.decode(buf.slice(0, n));
}

process.stdout.write("Content-Type: text/plain\r\nX-Guest: assemblyscript\r\n\r\n");
process.stdout.write("hello " + name + " from AssemblyScript\n");
process.stdout.write("method=" + method + " body=" + body + "\n");
