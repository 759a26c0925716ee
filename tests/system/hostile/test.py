#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# hostile: bounded bursts of hostile traffic on loopback (hostile.py), one kind at a time:
# random and truncated UDP packets; garbage, oversized and truncated DNS over TCP; half-open
# and slow TCP connections (one byte of the length prefix, then nothing; a query trickled a
# byte every 100 ms); oversized and malformed API requests on the Unix socket (huge headers,
# huge body, bad JSON, bad chunked encoding, garbage request lines); slow and surplus API
# connections. dnsd must close stalled DNS connections after dns.tcp_idle_timeout_ms
# (RFC 7766 §6.2.3), cut slow API clients after api_options.timeout_s, refuse every
# malformed request without storing anything, and after each burst answer a normal A query
# over UDP and TCP with the registered address and serve the API. Its VmRSS may grow at
# most RSS_GROWTH_MAX_MIB past its value after a warm-up round of every burst. Fixed seed
# (DNSD_HOSTILE_SEED); about 30 s.

import os
import random
import time

import dns.flags
import dns.rcode

import hostile
from dnsdtest import DOMAIN, TIME_SCALE, Dnsd, check, eq, main, rrs

# How far dnsd's resident set may grow over the whole test, past its size after the warm-up.
RSS_GROWTH_MAX_MIB = 32
SEED = int(os.environ.get("DNSD_HOSTILE_SEED", "6"))
IDLE_MS = 1500
API_TIMEOUT_S = 2
# A stalled connection must be closed within this long (twice the idle timeout, plus slack).
CLOSE_WITHIN_S = IDLE_MS / 1000.0 * 2 + 1
# Fewer UDP packets under valgrind (tools/valgrind.sh), which works through them 10-50
# times slower: the normal query after the burst would wait behind all of them.
UDP_PACKETS = int(10000 / TIME_SCALE)

CONFIG = """
dns = { tcp_idle_timeout_ms = %d; tcp_max_connection_ms = 8000; tcp_max_connections = 256; };
api_options = { timeout_s = %d; max_connections = 32; max_body = 65536; max_header = 8192; };
""" % (IDLE_MS, API_TIMEOUT_S)

WEB = {"addresses": ["127.0.0.10"], "port": 80, "ttl": 3600, "tags": ["primary"],
       "meta": {"v": "1"}}


def still_serving(d, what):
    """dnsd answers web.D over UDP and TCP and the API answers, after what."""
    check(d.alive(), "dnsd still running after %s" % what)
    for tcp in (False, True):
        r = d.query("web." + DOMAIN, "A", tcp=tcp, timeout=5 * TIME_SCALE)
        eq(dns.rcode.to_text(r.rcode()), "NOERROR", "rcode after %s (tcp=%s)" % (what, tcp))
        check(r.flags & dns.flags.AA, "authoritative answer after %s" % what)
        eq(rrs(r, "A"), ["127.0.0.10"], "web's address after %s (tcp=%s)" % (what, tcp))
    status, doc, _ = d.api("GET", "/v1/health")
    eq(status, 200, "API health after %s" % what)
    eq(doc.get("instances"), 1, "one instance registered after %s" % what)


def udp(d, t, rng, scale):
    sent = hostile.udp_burst(t, rng, 200 + UDP_PACKETS * scale)
    check(sent > 0, "UDP packets sent")


def tcp_garbage(d, t, rng, scale):
    eq(hostile.tcp_garbage_burst(t, rng, 10 + 100 * scale, CLOSE_WITHIN_S), 0,
       "garbage DNS-over-TCP connections closed by dnsd within %.1f s" % CLOSE_WITHIN_S)


def tcp_slow(d, t, rng, scale):
    half_open, slow = 5 + 95 * scale, 2 + 8 * scale
    left_open, answered = hostile.tcp_slow_burst(
        t, rng, half_open, slow, CLOSE_WITHIN_S + 2,
        during=lambda: still_serving(d, "%d half-open TCP connections" % half_open))
    eq(left_open, 0, "half-open TCP connections closed by dnsd after the idle timeout")
    # Each trickled byte came well within the idle timeout, so the queries are answered.
    eq(answered, slow, "queries trickled a byte every 100 ms answered")


def api_malformed(d, t, rng, scale):
    st = hostile.api_malformed_burst(t, rng)
    for what in ("huge header", "many headers"):
        check(st[what][0] in (431, 413, 414, 400, None), "%s refused: %r" % (what, st[what]))
    check(st["huge body"][0] in (413, None), "huge body refused: %r" % st["huge body"])
    for what in ("random body", "truncated JSON", "deep JSON"):
        for status in st[what]:
            check(status in (400, 413), "%s refused with 400: %r" % (what, st[what]))
    eq(st["wrong types"], [400], "wrong JSON types refused")
    for what in ("bad chunked", "garbage request", "huge declared body"):
        for status in st[what]:
            check(status is None or 400 <= status < 600, "%s refused: %r" % (what, st[what]))
    status, doc, _ = d.api("GET", "/v1/services/web")
    eq([i["id"] for i in doc["instances"]], ["web-1"], "no hostile PUT was stored")


def api_slow(d, t, rng, scale):
    cut = hostile.api_slow_burst(t, 2 + 4 * scale, 4 + 36 * scale, API_TIMEOUT_S * 3)
    for j, c in enumerate(cut):
        check(c is not None, "slow API client %d cut off by timeout_s=%d" % (j, API_TIMEOUT_S))
    # Served again once the surplus connections are gone.
    deadline = time.monotonic() + API_TIMEOUT_S * 3
    while d.api("GET", "/v1/health")[0] != 200:
        check(time.monotonic() < deadline, "API serves again after the surplus connections")
        time.sleep(0.2)


BURSTS = [("random and truncated UDP", udp), ("garbage DNS over TCP", tcp_garbage),
          ("half-open and slow TCP", tcp_slow), ("malformed API requests", api_malformed),
          ("slow and surplus API connections", api_slow)]


def test_hostile():
    print("seed %d (DNSD_HOSTILE_SEED)" % SEED, flush=True)
    rng = random.Random(SEED)
    # A small ASan quarantine, so that freed memory the sanitizer holds back does not count
    # as growth; no effect on a build without ASan.
    opts = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
        "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    with Dnsd(config=CONFIG) as d:
        t = hostile.Target(d.port, d.sock)
        d.put_instance("web", "web-1", **WEB)
        still_serving(d, "start")
        for scale in (0, 1):  # a warm-up round, then the measured one
            if scale:
                base = hostile.rss_kib(d.proc.pid)
                print("RSS after warm-up: %.1f MiB" % (base / 1024.0), flush=True)
            for name, burst in BURSTS:
                t0 = time.monotonic()
                burst(d, t, rng, scale)
                still_serving(d, name)
                if scale:
                    grown = (hostile.rss_kib(d.proc.pid) - base) / 1024.0
                    print("  %-34s %5.1f s  RSS %+.1f MiB" % (name, time.monotonic() - t0,
                                                             grown), flush=True)
                    check(grown <= RSS_GROWTH_MAX_MIB, "RSS grew %.1f MiB (bound %d) after %s"
                          % (grown, RSS_GROWTH_MAX_MIB, name))


if __name__ == "__main__":
    main(test_hostile)
