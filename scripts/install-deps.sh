#!/bin/sh
# Install the Debian packages Kiln needs to build, test and benchmark.
# Idempotent: only calls apt-get when a package is missing.
set -e
PKGS="gcc make clang lld tcc wabt wasi-libc libclang-rt-14-dev-wasm32 libclang-rt-14-dev libcmocka-dev libssl-dev
libjansson-dev libyajl-dev libffi-dev libmicrohttpd-dev libcurl4-openssl-dev libyaml-dev libsqlite3-dev sqlite3 wrk hyperfine nodejs npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node/npm may come from elsewhere on the machine; only require the commands.
case "$missing" in *nodejs*|*npm*) command -v node >/dev/null && command -v npm >/dev/null &&
    missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//') ;; esac
[ -z "$(echo $missing)" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
