#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# watch: blocking queries (GET /v1/services/S?index=N&wait=D) return at once when the index
# is behind, on a change with a higher X-Dnsd-Index, or after the wait with nothing
# changed; `regctl watch` prints the initial state and each change, --count ends it, --json
# prints the replies, and it exits 3 when dnsd goes away.

import json
import re
import threading
import time

from dnsdtest import Dnsd, check, contains, eq, main, no_sanitizer_report, regctl_background

SUMMARY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (\S+) index (\d+): (\d+) passing, "
                     r"(\d+) warning, (\d+) critical, (\d+) maintenance$")


def index_of(d, path):
    status, doc, headers = d.api("GET", path)
    eq(status, 200, "GET %s" % path)
    check("x-dnsd-index" in headers, "X-Dnsd-Index header on %s: %r" % (path, headers))
    return int(headers["x-dnsd-index"]), doc


def summary(line):
    m = SUMMARY.match(line.rstrip("\n"))
    check(m is not None, "a watch summary line: %r" % line)
    return m.group(1), int(m.group(2)), tuple(int(m.group(i)) for i in range(3, 7))


def blocking_queries(d):
    d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.20", "--port", "80")
    idx, doc = index_of(d, "/v1/services/web")
    check(idx > 0, "a registered service has an index > 0 (%d)" % idx)
    eq([i["id"] for i in doc["instances"]], ["web-1"], "plain GET lists web-1")

    t0 = time.monotonic()
    old, _ = index_of(d, "/v1/services/web?index=%d&wait=10s" % (idx - 1))
    check(time.monotonic() - t0 < 1.0, "an index behind the service answers at once")
    eq(old, idx, "same index")

    t0 = time.monotonic()
    status, _, headers = d.api("GET", "/v1/services/web?index=%d&wait=1s" % idx, timeout=5)
    took = time.monotonic() - t0
    eq(status, 200, "wait=1s with nothing changing")
    check(0.8 <= took <= 5.0, "wait=1s returns after about 1 s, not at once (%.2f s)" % took)
    eq(int(headers["x-dnsd-index"]), idx, "index unchanged after the wait")

    result = {}

    def blocking():
        t = time.monotonic()
        result["reply"] = d.api("GET", "/v1/services/web?index=%d&wait=10s" % idx, timeout=15)
        result["took"] = time.monotonic() - t

    th = threading.Thread(target=blocking)
    th.start()
    time.sleep(0.5)
    d.must_regctl("register", "web", "web-2", "--addr", "127.0.0.21", "--port", "80")
    th.join(timeout=12)
    check("reply" in result, "blocking query returned")
    status, doc, headers = result["reply"]
    eq(status, 200, "blocking query status")
    check(0.4 <= result["took"] <= 2.0, "returned on the change, not before it nor at the "
          "end of the wait (%.2f s)" % result["took"])
    check(int(headers["x-dnsd-index"]) > idx, "higher index after the change: %s > %d"
          % (headers["x-dnsd-index"], idx))
    eq(sorted(i["id"] for i in doc["instances"]), ["web-1", "web-2"], "the new state")

    # A heartbeat that changes nothing does not wake a watcher (renewals do not count).
    idx2, _ = index_of(d, "/v1/services/web")
    d.must_regctl("heartbeat", "web", "web-1")
    t0 = time.monotonic()
    status, _, headers = d.api("GET", "/v1/services/web?index=%d&wait=1s" % idx2, timeout=5)
    check(time.monotonic() - t0 >= 0.8, "a plain renewal does not move the index")
    eq(int(headers["x-dnsd-index"]), idx2, "index unchanged by a renewal")

    status, doc, _ = d.api("GET", "/v1/services/web?index=x&wait=1s")
    eq((status, doc.get("field")), (400, "index"), "bad index refused")
    status, doc, _ = d.api("GET", "/v1/services/web?index=1&wait=forever")
    eq((status, doc.get("field")), (400, "wait"), "bad wait refused")


def regctl_watch(d):
    w = regctl_background(d, "watch", "web", "--count", "1", "--wait", "10s")
    first = w.next_line(5)
    check(first is not None, "regctl watch prints the initial state")
    svc, idx0, counts = summary(first)
    eq((svc, counts), ("web", (2, 0, 0, 0)), "initial state: 2 passing")
    d.must_regctl("heartbeat", "web", "web-1", "--status", "warning", "--note", "slow")
    rc, out, err = w.wait(5)
    eq(rc, 0, "watch --count 1 exits 0 after one change (stderr %r)" % err)
    no_sanitizer_report(err, "regctl watch")
    lines = out.splitlines()
    eq(len(lines), 3, "initial summary, change summary, one instance line: %r" % lines)
    svc, idx1, counts = summary(lines[1])
    check(idx1 > idx0, "the change has a higher index (%d > %d)" % (idx1, idx0))
    eq(counts, (1, 1, 0, 0), "1 passing, 1 warning")
    eq(lines[2], "  web-1 warning: heartbeat: slow", "the instance that is not passing")

    w = regctl_background(d, "--json", "watch", "web", "--count", "1", "--wait", "10s")
    first = w.next_line(5)
    check(first is not None, "regctl watch --json prints the initial state")
    eq(sorted(i["id"] for i in json.loads(first)["instances"]), ["web-1", "web-2"],
       "initial JSON line")
    d.must_regctl("deregister", "web", "web-2")
    rc, out, err = w.wait(5)
    eq(rc, 0, "watch --json --count 1 (stderr %r)" % err)
    lines = out.splitlines()
    eq(len(lines), 2, "two JSON lines: %r" % lines)
    eq([i["id"] for i in json.loads(lines[1])["instances"]], ["web-1"], "change JSON line")

    # A watch that sees no change stays put (and does not spin) across several waits.
    w = regctl_background(d, "watch", "web", "--wait", "200ms")
    check(w.next_line(5) is not None, "initial state")
    eq(w.next_line(5), "  web-1 warning: heartbeat: slow\n", "initial state's warning line")
    line = w.next_line(1.0)
    check(line is None, "no output without a change across 5 waits: %r" % line)
    d.must_regctl("register", "web", "web-3", "--addr", "127.0.0.23", "--port", "80")
    line = w.next_line(3)
    check(line is not None, "a change after quiet waits is printed")
    eq(summary(line)[2], (1, 1, 0, 0), "web-3 passing, web-1 still warning")
    return w


def test():
    d = Dnsd()
    d.start()
    blocking_queries(d)
    w = regctl_watch(d)
    d.stop()
    rc, out, err = w.wait(5)
    eq(rc, 3, "watch exits 3 when dnsd goes away (stdout %r, stderr %r)" % (out, err))
    contains(err, "cannot reach dnsd", "watch says dnsd went away")
    no_sanitizer_report(err, "regctl watch")


main(test)
