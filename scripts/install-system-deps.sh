#!/bin/sh
# Installs the Debian packages the test suite runs for real, only where missing.
set -eu
need=""
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v haproxy >/dev/null 2>&1 || need="$need haproxy"
command -v nginx >/dev/null 2>&1 || need="$need nginx"
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$need"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
