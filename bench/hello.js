// hello.js - the Node.js startup peer for bench/run.sh (section "startup").
console.log('hello');
