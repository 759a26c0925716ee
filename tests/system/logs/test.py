#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# logs: structured logs on stderr. With the query log on (sample = 1) three queries (UDP A,
# TCP SRV, UDP NXDOMAIN) give exactly three "query" lines naming the client, transport,
# qname, qtype, rcode, answer count and duration; with sample = 2 ten queries give five.
# With log_format = "json" every stderr line is one JSON object with ts, level, module and
# msg, and query lines carry their fields as keys. The query log is off by default.

import json
import re

import dns.message
import dns.query

from dnsdtest import Dnsd, check, eq, main

D = "service.internal."
TEXT_QUERY_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info query: client=127\.0\.0\.1#(\d+) "
    r"transport=(udp|tcp) qname=(\S+) qtype=(\S+) rcode=(\S+) answers=(\d+) "
    r"duration_us=(\d+)$")


def query_lines(d):
    return [line for line in d.stderr_text().splitlines() if " info query: " in line]


def json_lines(d):
    out = []
    for line in d.stderr_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            check(False, "stderr line is JSON: %r" % line)
        check(isinstance(obj, dict), "stderr line is a JSON object: %r" % line)
        out.append(obj)
    return out


def ask(d, name, rdtype, tcp=False):
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=d.port, timeout=2)
    return dns.query.udp(q, "127.0.0.1", port=d.port, timeout=2)


def config(fmt, enabled, sample):
    return 'log_format = "%s";\nquery_log = { enabled = %s; sample = %d; };\n' % (
        fmt, "true" if enabled else "false", sample)


def text_every_query():
    with Dnsd(config=config("text", True, 1)) as d:
        d.put_instance("web", "w1", addresses=["192.0.2.1", "192.0.2.2"], port=80)
        ask(d, "web." + D, "A")
        ask(d, "_web._tcp." + D, "SRV", tcp=True)
        ask(d, "nosuch." + D, "A")
        lines = query_lines(d)
        eq(len(lines), 3, "three query lines: %r" % lines)
        got = []
        for line in lines:
            m = TEXT_QUERY_RE.match(line)
            check(m is not None, "query line format: %r" % line)
            check(int(m.group(1)) > 0, "client port: %r" % line)
            got.append(m.group(2, 3, 4, 5, 6))
        eq(got, [("udp", "web." + D, "A", "NOERROR", "2"),
                 ("tcp", "_web._tcp." + D, "SRV", "NOERROR", "1"),
                 ("udp", "nosuch." + D, "A", "NXDOMAIN", "0")], "query line fields")


def json_sampled():
    with Dnsd(config=config("json", True, 2)) as d:
        d.put_instance("web", "w1", addresses=["192.0.2.1"], port=80)
        for i in range(10):
            ask(d, "web." + D if i % 2 else "_web._tcp." + D, "A" if i % 2 else "SRV")
        objs = json_lines(d)
        check(len(objs) > 5, "start-up lines are JSON too: %d lines" % len(objs))
        for obj in objs:
            for key in ("ts", "level", "module", "msg"):
                check(isinstance(obj.get(key), str), "key %s in %r" % (key, obj))
            check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["ts"]) is not None,
                  "ts format: %r" % obj["ts"])
        check(any(o["module"] == "registry" and "w1" in o["msg"] for o in objs),
              "the registration is logged as JSON")
        queries = [o for o in objs if o["module"] == "query"]
        eq(len(queries), 5, "1 in 2 of 10 queries logged: %r" % queries)
        for q in queries:
            eq(q["level"], "info", "query level")
            check(q["client"].startswith("127.0.0.1#"), "client: %r" % q)
            eq(q["transport"], "udp", "transport")
            # Queries 0, 2, 4, ... are logged: the SRV ones.
            eq((q["qname"], q["qtype"], q["rcode"], q["answers"]),
               ("_web._tcp." + D, "SRV", "NOERROR", 1), "query fields")
            check(isinstance(q["duration_us"], int) and q["duration_us"] >= 0,
                  "duration_us: %r" % q)


def off_by_default():
    with Dnsd() as d:
        for _ in range(3):
            ask(d, D, "SOA")
        eq(query_lines(d), [], "no query lines without query_log")
        check(any(" info main: " in line for line in d.stderr_text().splitlines()),
              "text lines by default")


def test():
    text_every_query()
    json_sampled()
    off_by_default()


main(test)
