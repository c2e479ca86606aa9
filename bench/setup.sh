#!/bin/sh
# Creates the benchmark environment idempotently (stamp files under bench/.stamps):
#   bench/.venv         python -m venv; Flask-SocketIO, eventlet, py-spy, and -e .. (flask_ioengine)
#   bench/node_modules  socket.io 4.8 (the Node baseline server) and socket.io-client (load)
# Neither is a dependency of the package. Re-runs only a step whose inputs changed.
set -eu
cd "$(dirname "$0")"
PY="${PY:-python3}"
mkdir -p .stamps

stale() {  # stale STAMP INPUT... : true if STAMP is missing or older than any INPUT
    stamp="$1"; shift
    [ -f "$stamp" ] || return 0
    for f in "$@"; do
        [ "$f" -nt "$stamp" ] && return 0
    done
    return 1
}

if stale .stamps/venv requirements.txt ../setup.cfg ../pyproject.toml setup.sh \
        || ! [ -x .venv/bin/python ]; then
    echo "bench: setting up bench/.venv"
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt -e ..
    touch .stamps/venv
fi

if stale .stamps/npm package.json setup.sh || ! [ -d node_modules/socket.io ]; then
    echo "bench: installing bench/node_modules"
    npm install --no-audit --no-fund --loglevel=error
    touch .stamps/npm
fi
