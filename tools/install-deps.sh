#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install the Debian 12 packages dnsd needs to build, test and benchmark. Idempotent: when
# every package is already installed it changes nothing and touches no network.
# Usage: tools/install-deps.sh [build|test|bench|fuzz|valgrind|all]   (default: all)
set -eu

build="build-essential cmake pkg-config libuv1-dev libldns-dev libconfig-dev libjansson-dev
       libmicrohttpd-dev libcurl4-openssl-dev libsystemd-dev liburcu-dev"
test="libcriterion-dev bind9-dnsutils knot-dnsutils ldnsutils python3 python3-dnspython curl openssl
      groff-base iproute2 prometheus haproxy unbound dnsmasq-base"
bench="dnsperf nsd knot"
fuzz="clang clang-format libclang-rt-14-dev"
valgrind="valgrind"

case "${1:-all}" in
    build) want="$build" ;;
    test) want="$build $test" ;;
    bench) want="$build $bench" ;;
    fuzz) want="$build $test $fuzz" ;;
    valgrind) want="$build $test $valgrind" ;;
    all) want="$build $test $bench $fuzz $valgrind" ;;
    *) echo "usage: $0 [build|test|bench|fuzz|valgrind|all]" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing; run as root (or with sudo)" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Packaged services are not ours to run: the tests and the benchmark start their own.
for svc in nsd knot unbound haproxy prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done
