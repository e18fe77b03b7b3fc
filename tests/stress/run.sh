#!/bin/sh
# Multi-threaded runtime stress: see tests/tools/stress.c.
set -e
out="$KILN_BUILD/stress"
mkdir -p "$out"
wat2wasm "$KILN_ROOT/tests/stress/stress.wat" -o "$out/stress.wasm"
exec "$KILN_BUILD/tests/tools/stress" "$out/stress.wasm" "${KILN_STRESS_THREADS:-4}" "${KILN_STRESS_ITERS:-20000}"
