// bench/deploy/measure.mjs - one timed deploy against a running `kiln serve`
// with an empty cache: starts the clock, uploads the module (by `kiln deploy`,
// by a PUT to the admin API, or by an atomic rename into the served
// directory), polls the function's route until the first 200, then (unless
// --no-optimized) polls the admin API until the function's tier is
// "optimized". Prints one line: `first_ms opt_ms statuses`, where statuses
// lists the distinct answers seen until the first 200, in order, each with
// the ms at which it was first seen (e.g. 404@12,503@95,200@160); opt_ms is "-" when not measured or not reached in time.
//
// Usage: node measure.mjs --mode cli|api|dir --name NAME --module FILE
//            --route URL [--body TEXT] --admin URL --token TOKEN
//            [--kiln PATH] [--dir DIR] [--no-optimized] [--timeout-s N]
import { spawn } from "node:child_process";
import { copyFileSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const args = {};
for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === "--no-optimized") args.noOptimized = true;
    else args[a.replace(/^--/, "")] = process.argv[++i];
}
const timeoutMs = Number(args["timeout-s"] || 600) * 1000;
const POLL_MS = 5;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const auth = { authorization: `Bearer ${args.token}` };

function fail(msg) {
    process.stderr.write(`measure.mjs: ${msg}\n`);
    process.exit(1);
}

// upload(): resolves when the upload itself has returned (the clock keeps
// running from before it started).
async function upload() {
    if (args.mode === "cli") {
        const child = spawn(args.kiln, ["deploy", "--admin", args.admin, "--token", args.token,
            args.name, args.module], { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        const code = await new Promise((r) => child.on("exit", r));
        if (code !== 0) fail(`kiln deploy exited ${code}: ${err.trim()}`);
    } else if (args.mode === "api") {
        const res = await fetch(`${args.admin}/functions/${args.name}?wait=0`, {
            method: "PUT", headers: auth, body: readFileSync(args.module),
        });
        if (res.status !== 201) fail(`PUT answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
    } else if (args.mode === "dir") {
        // A name the watcher ignores (not *.wasm), then an atomic rename, as a
        // deploy script would do it.
        const tmp = join(args.dir, `.${args.name}.upload`);
        copyFileSync(args.module, tmp);
        renameSync(tmp, join(args.dir, `${args.name}.wasm`));
    } else {
        fail(`unknown --mode ${args.mode}`);
    }
}

const t0 = performance.now();
await upload();
const statuses = [];
let first = null;
while (first === null) {
    let status = 0;
    try {
        const res = await fetch(args.route, args.body !== undefined
            ? { method: "POST", body: args.body } : {});
        status = res.status;
        await res.arrayBuffer();
    } catch {
        status = 0; // connection refused or reset: keep polling
    }
    if (statuses.length === 0 || statuses[statuses.length - 1].status !== status)
        statuses.push({ status, ms: performance.now() - t0 });
    if (status === 200) first = performance.now() - t0;
    else if (status !== 0 && status !== 404 && status !== 503)
        fail(`route answered ${status} (statuses so far: ${statuses.map((s) => s.status).join(",")})`);
    else if (performance.now() - t0 > timeoutMs) fail(`no 200 within ${timeoutMs} ms`);
    else await sleep(POLL_MS);
}

let opt = "-";
if (!args.noOptimized) {
    // Directory functions are not in the registry: /status lists every
    // function served, with its tier.
    for (;;) {
        let tier = null;
        if (args.mode === "dir") {
            const res = await fetch(`${args.admin}/status`, { headers: auth });
            const st = await res.json();
            const fn = (st.functions || []).find((f) => f.name === args.name);
            tier = fn ? fn.tier : null;
        } else {
            const res = await fetch(`${args.admin}/functions/${args.name}`, { headers: auth });
            tier = (await res.json()).tier;
        }
        if (tier === "optimized") {
            opt = (performance.now() - t0).toFixed(0);
            break;
        }
        if (performance.now() - t0 > timeoutMs) break;
        await sleep(20);
    }
}
console.log(`${first.toFixed(0)} ${opt} ${statuses.map((s) => `${s.status}@${s.ms.toFixed(0)}`).join(",")}`);
