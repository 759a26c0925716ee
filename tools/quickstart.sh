#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install what dnsd needs, build it, and run it in the foreground with its defaults:
# DNS on 127.0.0.1:8053 and [::1]:8053, the API on unix:/run/dnsd/api.sock, the example
# zones from zones/. Stop it with Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh build
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" >/dev/null
# Started as root, dnsd binds its ports, then drops to the system user dnsd (the "user"
# option of dnsd.conf(5)); create it once, as the Debian package does.
if [ "$(id -u)" = 0 ]; then
    getent group dnsd >/dev/null || groupadd --system dnsd
    getent passwd dnsd >/dev/null || useradd --system --gid dnsd --no-create-home \
        --home-dir / --shell /usr/sbin/nologin --comment "dnsd service discovery server" dnsd
fi
cat <<TXT
dnsd is starting with its defaults (started as root, it runs as the user dnsd once its
sockets are open; root's regctl may still use /run/dnsd/api.sock). In another terminal, try:

  export DNSD_API=unix:/run/dnsd/api.sock
  build/release/regctl register web web-1 --addr 127.0.0.10 --port 8080 --tag primary
  dig @127.0.0.1 -p 8053 web.service.internal
  dig @127.0.0.1 -p 8053 _web._tcp.service.internal SRV
  dig @127.0.0.1 -p 8053 db.example.internal
  build/release/regctl list web

TXT
exec build/release/dnsd --zones zones "$@"
