#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# metrics: GET /metrics on the API's Unix socket (curl --unix-socket) in the Prometheus text
# format. Queries of several types and RCODEs over UDP and TCP move the query, response
# and truncation counters by exactly what was sent (the duration histogram times 1 in 16
# answers); the registry gauges count services and instances by health; active check
# results and API replies by status class are counted; an open DNS TCP connection shows in
# the gauge. Registrations, heartbeats, deregistrations and health changes are counted by
# kind; questions outside every zone by forwarding outcome (answered and SERVFAIL through a
# fake forwarder, REFUSED without one). HEAD answers the same headers, other methods 405.
# Every scrape passes `promtool check metrics` (Debian package prometheus); without promtool
# the test fails.

import os
import re
import shutil
import socket
import subprocess
import threading

import dns.exception
import dns.message
import dns.opcode
import dns.query
import dns.rcode

from dnsdtest import (Dnsd, HttpStub, TcpListener, check, eq, header, main, run,
                      tcp_read_message, tcp_send_query, wait_until)

D = "service.internal."
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
INTERVAL = ["--check-interval", "300ms", "--check-timeout", "200ms"]


def scrape(d, method="GET"):
    """Fetch /metrics with curl; returns (status, headers, body text)."""
    hdr = os.path.join(d.tmp, "metrics.hdr")
    argv = ["curl", "-sS", "--max-time", "5", "--unix-socket", d.sock, "-D", hdr, "-o", "-",
            "-w", "\n%{http_code}"]
    argv += ["-I"] if method == "HEAD" else ["-X", method]
    rc, out, err = run(argv + ["http://localhost/metrics"], timeout=10)
    check(rc == 0, "curl %s /metrics failed (%d): %s" % (method, rc, err))
    text, _, code = out.rpartition("\n")
    headers = {}
    with open(hdr) as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    return int(code), headers, text


def parse(text):
    """Samples of the text format as {(name, ((label, value), ...)): float}."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        check(m is not None, "metrics line parses: %r" % line)
        labels = tuple(sorted(LABEL_RE.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def val(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    check(key in samples, "metric %s%r present" % (name, labels))
    return samples[key]


def metrics(d):
    status, headers, text = scrape(d)
    eq(status, 200, "GET /metrics status")
    eq(headers.get("content-type"), CONTENT_TYPE, "GET /metrics Content-Type")
    promtool(text)
    return parse(text)


def promtool(text):
    exe = shutil.which("promtool")
    check(exe is not None, "promtool is installed (Debian package prometheus; "
          "tools/install-deps.sh test)")
    p = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    eq((p.returncode, out.strip()), (0, ""), "promtool check metrics")


def delta(before, after, name, **labels):
    return val(after, name, **labels) - val(before, name, **labels)


def udp(d, q):
    return dns.query.udp(q, "127.0.0.1", port=d.port, timeout=2)


def send_queries(d):
    """The queries whose counts the test expects; returns nothing, checks each RCODE."""
    def ask(name, rdtype, want, **kw):
        r = udp(d, dns.message.make_query(name, rdtype, **kw))
        eq(dns.rcode.to_text(r.rcode()), want, "%s %s rcode" % (name, rdtype))
        return r

    for _ in range(3):
        ask("web." + D, "A", "NOERROR")
    ask("web." + D, "AAAA", "NOERROR")
    ask("_web._tcp." + D, "SRV", "NOERROR")
    ask("_web._tcp." + D, "SRV", "NOERROR")
    ask("w1.web." + D, "TXT", "NOERROR")
    ask(D, "SOA", "NOERROR")
    ask(D, "NS", "NOERROR")
    ask("web." + D, "ANY", "NOERROR")
    ask("web." + D, "MX", "NOERROR")
    ask("nosuch." + D, "A", "NXDOMAIN")
    ask("nosuch2." + D, "A", "NXDOMAIN")
    ask("example.org.", "A", "REFUSED")
    q = dns.message.make_query("web." + D, "A")
    q.use_edns(1, payload=1232)  # make_query(use_edns=1) would mean True, i.e. version 0
    raw = d.udp_raw(q.to_wire())
    check(raw is not None, "reply to EDNS version 1")
    eq(dns.rcode.to_text(dns.message.from_wire(raw).rcode()), "BADVERS", "EDNS version 1")
    r = ask("_many._tcp." + D, "SRV", "NOERROR", use_edns=False)
    check(r.flags & dns.flags.TC, "60 SRV records over UDP without EDNS are truncated")
    q = dns.message.make_query("web." + D, "A")
    q.set_opcode(dns.opcode.STATUS)
    eq(dns.rcode.to_text(udp(d, q).rcode()), "NOTIMP", "opcode STATUS")
    raw = d.udp_raw(header(0x4242, 0, qd=0))
    check(raw is not None and raw[3] & 0x0F == 1, "no question: FORMERR (%r)" % raw)
    for name, rdtype in (("web." + D, "A"), ("web." + D, "A"), ("_web._tcp." + D, "SRV")):
        r = dns.query.tcp(dns.message.make_query(name, rdtype), "127.0.0.1", port=d.port,
                          timeout=2)
        eq(dns.rcode.to_text(r.rcode()), "NOERROR", "TCP %s %s" % (name, rdtype))


# (transport, qtype) -> queries sent by send_queries; every other pair stays put.
WANT_QUERIES = {
    ("udp", "A"): 8,  # 3 web, nosuch x2, example.org, BADVERS, opcode STATUS
    ("udp", "AAAA"): 1,
    ("udp", "SRV"): 3,
    ("udp", "TXT"): 1,
    ("udp", "SOA"): 1,
    ("udp", "NS"): 1,
    ("udp", "ANY"): 1,
    ("udp", "other"): 2,  # MX, and the message without a question
    ("tcp", "A"): 2,
    ("tcp", "SRV"): 1,
}
WANT_RCODES = {"NOERROR": 15, "NXDOMAIN": 2, "REFUSED": 1, "FORMERR": 1, "NOTIMP": 1,
               "SERVFAIL": 0, "BADVERS": 1, "other": 0}
QTYPES = ("A", "AAAA", "SRV", "TXT", "SOA", "NS", "ANY", "other")


def register(d):
    d.put_instance("web", "w1", addresses=["192.0.2.1"], port=80)
    d.put_instance("web", "w2", addresses=["192.0.2.2"], port=80)
    d.put_instance("db", "d1", addresses=["192.0.2.3"], port=5432)
    d.put_instance("db", "d2", addresses=["192.0.2.4"], port=5432)
    d.must_regctl("heartbeat", "db", "d1", "--status", "warning")
    d.must_regctl("maintenance", "db", "d2", "on")
    for i in range(60):
        d.put_instance("many", "m%02d" % i, addresses=["10.9.0.%d" % (i + 1)], port=1000 + i)


def upstream():
    """A fake forwarder on 127.0.0.1 answering every UDP question NOERROR; returns its
    socket (the caller closes it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                data, addr = s.recvfrom(65535)
                s.sendto(dns.message.make_response(dns.message.from_wire(data)).to_wire(),
                         addr)
            except (OSError, dns.exception.DNSException):
                return
    threading.Thread(target=serve, daemon=True).start()
    return s


def forward_outcomes():
    """A forwarder that answers twice, then is closed: 2 answered, then 1 SERVFAIL."""
    up = upstream()
    try:
        cfg = ('forwarders = ["127.0.0.1:%d"];\nforward = { timeout_ms = 300; retries = 0; };\n'
               % up.getsockname()[1])
        with Dnsd(config=cfg) as d:
            for _ in range(2):
                eq(dns.rcode.to_text(udp(d, dns.message.make_query("example.org.", "A"))
                                     .rcode()), "NOERROR", "forwarded answer")
            up.close()  # now the forwarder is gone: SERVFAIL
            eq(dns.rcode.to_text(udp(d, dns.message.make_query("example.net.", "A")).rcode()),
               "SERVFAIL", "every forwarder failed")
            m = metrics(d)
            got = {o: val(m, "dnsd_forward_queries_total", outcome=o)
                   for o in ("answered", "servfail", "refused")}
            eq(got, {"answered": 2, "servfail": 1, "refused": 0}, "forward outcomes")
    finally:
        up.close()


def test():
    forward_outcomes()
    lst = TcpListener()
    stub = HttpStub(status=500)
    try:
        with Dnsd() as d:
            register(d)
            before = metrics(d)
            eq(val(before, "dnsd_up"), 1, "dnsd_up")
            check(any(k[0] == "dnsd_build_info" and v == 1 for k, v in before.items()),
                  "dnsd_build_info present")

            send_queries(d)
            # 4xx replies: a bad body and an unknown path; 405 on POST /metrics.
            status, _, _ = d.api("PUT", "/v1/services/web/instances/w9", raw=b"{")
            eq(status, 400, "bad JSON")
            status, _, _ = d.api("GET", "/v2/nothing")
            eq(status, 404, "unknown path")
            status, headers, _ = scrape(d, "POST")
            eq((status, headers.get("allow")), (405, "GET, HEAD"), "POST /metrics")
            status, headers, text = scrape(d, "HEAD")
            eq((status, headers.get("content-type")), (200, CONTENT_TYPE), "HEAD /metrics")
            # curl -I prints the headers on stdout; no body follows them.
            check(int(headers.get("content-length", "0")) > 0 and "dnsd_up" not in text,
                  "HEAD /metrics: a length and no body (%r)" % text)

            after = metrics(d)
            for t in ("udp", "tcp"):
                for qt in QTYPES:
                    eq(delta(before, after, "dnsd_dns_queries_total", transport=t, qtype=qt),
                       WANT_QUERIES.get((t, qt), 0), "queries %s %s" % (t, qt))
            for rc, n in WANT_RCODES.items():
                eq(delta(before, after, "dnsd_dns_responses_total", rcode=rc), n,
                   "responses %s" % rc)
            eq(delta(before, after, "dnsd_dns_truncated_total"), 1, "truncated")
            # No forwarders: example.org is the one question outside every zone, refused.
            got = {o: delta(before, after, "dnsd_forward_queries_total", outcome=o)
                   for o in ("answered", "servfail", "refused")}
            eq(got, {"answered": 0, "servfail": 0, "refused": 1}, "forward outcomes")
            total = sum(WANT_QUERIES.values())
            # 1 in 16 answers is timed (metrics.h): 21 answers in a row hold 1 or 2 of them.
            timed = delta(before, after, "dnsd_dns_query_duration_seconds_count")
            check(timed in (total // 16, total // 16 + 1),
                  "1 in 16 of %d answers timed: %r" % (total, timed))
            eq(delta(before, after, "dnsd_dns_query_duration_seconds_bucket", le="+Inf"),
               timed, "+Inf bucket equals the count")
            took = delta(before, after, "dnsd_dns_query_duration_seconds_sum")
            check(0 < took < timed * 0.1, "duration sum moved plausibly: %r s" % took)
            eq(delta(before, after, "dnsd_api_requests_total", code="4xx"), 3,
               "4xx replies: 400, 404, 405")
            # The scrape before, the HEAD: at least two 2xx between the two scrapes.
            check(delta(before, after, "dnsd_api_requests_total", code="2xx") >= 2,
                  "2xx replies counted")
            eq(delta(before, after, "dnsd_api_requests_total", code="5xx"), 0, "no 5xx")

            eq(val(after, "dnsd_registry_services"), 3, "services")
            got = {h: val(after, "dnsd_registry_instances", health=h)
                   for h in ("passing", "warning", "critical", "maintenance")}
            eq(got, {"passing": 62, "warning": 1, "critical": 0, "maintenance": 1},
               "instances by health")
            check(val(after, "dnsd_registry_serial") >= 66, "registry serial counts changes")
            # register() made 64 instances, one warning heartbeat and maintenance (health).
            eq(val(after, "dnsd_registry_changes_total", kind="register"), 64, "registrations")
            eq(val(after, "dnsd_registry_changes_total", kind="health"), 2, "health changes")
            eq(val(after, "dnsd_registry_changes_total", kind="expire"), 0, "no expiry")
            d.must_regctl("heartbeat", "web", "w1")
            d.must_regctl("heartbeat", "web", "w1")
            d.must_regctl("deregister", "web", "w2")
            m = metrics(d)
            eq(delta(after, m, "dnsd_registry_changes_total", kind="heartbeat"), 2, "heartbeats")
            eq(delta(after, m, "dnsd_registry_changes_total", kind="deregister"), 1,
               "deregistrations")
            d.put_instance("web", "w2", addresses=["192.0.2.2"], port=80)

            # Open DNS TCP connections are a gauge.
            eq(val(after, "dnsd_tcp_connections"), 0, "no TCP connection open")
            s = d.tcp_connect()
            try:
                tcp_send_query(s, dns.message.make_query("web." + D, "A").to_wire())
                tcp_read_message(s)
                eq(val(metrics(d), "dnsd_tcp_connections"), 1, "one TCP connection open")
            finally:
                s.close()
            closed = wait_until(lambda: val(metrics(d), "dnsd_tcp_connections") == 0, 3)
            check(closed, "the gauge falls back to 0 once the client closes")

            # Active checks: a TCP probe that passes, an HTTP probe that fails (500).
            d.must_regctl("register", "probe", "t1", "--addr", "127.0.0.1", "--port",
                          str(lst.port), "--check-tcp", "127.0.0.1:%d" % lst.port, *INTERVAL)
            d.must_regctl("register", "probe", "h1", "--addr", "127.0.0.1", "--port",
                          str(stub.port), "--check-http", stub.url("/health"), *INTERVAL)

            def probed():
                m = metrics(d)
                ok = (val(m, "dnsd_health_checks_total", kind="tcp", outcome="pass") >= 1 and
                      val(m, "dnsd_health_checks_total", kind="http", outcome="fail") >= 1 and
                      val(m, "dnsd_registry_instances", health="passing") == 63)
                return m if ok else None
            m = wait_until(probed, 5, 0.1)
            check(m is not None, "probe results counted within a few intervals")
            eq(val(m, "dnsd_health_checks_total", kind="tcp", outcome="fail"), 0,
               "no TCP failure")
            eq(val(m, "dnsd_health_checks_total", kind="http", outcome="pass"), 0,
               "no HTTP pass")
            eq(val(m, "dnsd_registry_services"), 4, "services with probe")
            eq(val(m, "dnsd_registry_instances", health="critical"), 1, "failing HTTP check")
    finally:
        lst.close()
        stub.close()


main(test)
