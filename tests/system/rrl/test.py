#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# rrl: response rate limiting of UDP answers (dns.rrl). With loopback not exempt, 50 answers
# per second and slip 2, a burst of 400 UDP queries from one socket gets about the rate in
# full answers; of the rest, every second one comes back truncated (TC=1, question only, no
# answers) and the others are dropped; the same question over TCP is answered in full, and
# ::1 (another client network) is not limited by 127.0.0.1's bucket. /metrics counts exactly
# what was dropped and slipped, and the log says that limiting started. With the default
# configuration (loopback exempt) and with rrl disabled, all 400 are answered in full. Bad
# rrl options stop dnsd with file:line and the option's name.

import os
import re
import select
import socket
import time

import dns.flags
import dns.message

from dnsdtest import (HAVE_IPV6, Dnsd, check, contains, eq, free_port, main, run_dnsd,
                      write_file)

D = "service.internal."
NAME = "web." + D
BURST = 400
RATE = 50

LIMITED = """
dns = { rrl = { exempt = [ ]; responses_per_second = 50; slip = 2; }; };
"""
DISABLED = """
dns = { rrl = { enabled = false; exempt = [ ]; responses_per_second = 1; }; };
"""


def burst(d, n=BURST, addr="127.0.0.1", family=socket.AF_INET, edns=False):
    """Send n A queries for NAME from one UDP socket as fast as possible, reading replies in
    between so the client's own buffer never overflows, then wait 1 s for stragglers.
    With edns, the queries carry OPT, and so must every reply (RFC 6891 §7).
    Returns (full, slipped, other): full answers, TC replies with no answer, anything else."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((addr, d.port))
    queries = {}
    replies = []

    def drain(wait):
        while True:
            ready, _, _ = select.select([s], [], [], wait)
            if not ready:
                return
            try:
                replies.append(s.recv(65535))
            except BlockingIOError:
                return

    for i in range(n):
        q = dns.message.make_query(NAME, "A", use_edns=0 if edns else None)
        q.id = i
        queries[i] = q
        s.send(q.to_wire())
        drain(0)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and len(replies) < n:
        drain(deadline - time.monotonic())
    s.close()
    full, slipped, other = 0, 0, []
    seen = set()
    for wire in replies:
        r = dns.message.from_wire(wire)
        check(r.id in queries and r.id not in seen, "one reply per query id (%d)" % r.id)
        seen.add(r.id)
        eq([q.to_text() for q in r.question], [q.to_text() for q in queries[r.id].question],
           "reply %d carries the question" % r.id)
        addrs = [rd.address for rrset in r.answer for rd in rrset]
        if (r.edns >= 0) != edns:
            other.append(r.to_text())
        elif not r.flags & dns.flags.TC and addrs == ["192.0.2.10"]:
            full += 1
        elif r.flags & dns.flags.TC and not r.answer and not r.authority and \
                not r.additional and r.rcode() == 0:
            slipped += 1
        else:
            other.append(r.to_text())
    return full, slipped, other


def rate_limited(d):
    """dnsd_dns_rate_limited_total by action, from /metrics."""
    status, _, headers = d.api("GET", "/metrics")
    eq(status, 200, "GET /metrics")
    text = headers["_body"]
    out = {}
    for action in ("dropped", "slipped"):
        m = re.search(r'^dnsd_dns_rate_limited_total\{action="%s"\} (\d+)$' % action, text,
                      re.M)
        check(m is not None, "metrics have dnsd_dns_rate_limited_total{action=%r}" % action)
        out[action] = int(m.group(1))
    return out


def register(d):
    d.put_instance("web", "web-1", addresses=["192.0.2.10"], port=80, ttl=300)


def test_limited():
    with Dnsd(config=LIMITED) as d:
        register(d)
        t0 = time.monotonic()
        full, slipped, other = burst(d)
        elapsed = time.monotonic() - t0  # sending, then 1 s of waiting for replies
        eq(other, [], "every reply is a full answer or a slipped TC reply")
        dropped = BURST - full - slipped
        # The burst of one second's worth, plus at most what refills while the queries can
        # still arrive (dnsd may lag behind the sender on a busy machine).
        check(RATE <= full <= RATE + RATE * elapsed + 1,
              "about the rate answered in full: %d in %.2f s" % (full, elapsed))
        # slip 2: of the limited answers, every second one is slipped, the others dropped.
        eq(slipped, (BURST - full) // 2, "every other limited answer slipped")
        check(dropped >= 100, "limited answers dropped: %d" % dropped)
        eq(rate_limited(d), {"dropped": dropped, "slipped": slipped},
           "metrics count what was dropped and slipped")

        # TCP is never limited: the client a slipped answer sends there is answered in full.
        for _ in range(5):
            r = d.query(NAME, "A", tcp=True)
            check(not r.flags & dns.flags.TC, "TCP answer not truncated")
            eq([rd.address for rrset in r.answer for rd in rrset], ["192.0.2.10"],
               "TCP answer in full while UDP is limited")
        # Still limited over UDP right after (the bucket has not refilled in full), and a
        # slipped reply to an EDNS query keeps its OPT record.
        full2, slipped2, other2 = burst(d, n=200, edns=True)
        check(full2 < 200 and slipped2 > 0, "UDP still limited: %d full, %d slipped"
              % (full2, slipped2))
        eq(other2, [], "with EDNS every reply, full or slipped, carries OPT")
        if HAVE_IPV6:
            # ::1 is another client network with a bucket of its own.
            full6, _, _ = burst(d, n=RATE, addr="::1", family=socket.AF_INET6)
            eq(full6, RATE, "::1 answered in full while 127.0.0.0/24 is limited")
        contains(d.stderr_text(),
                 "rate limiting UDP answers (dns.rrl): client network 127.0.0.0/24 is over "
                 "the rate", "the start of limiting is logged")


def test_default_exempts_loopback():
    with Dnsd() as d:
        register(d)
        full, slipped, other = burst(d)
        eq((full, slipped, other), (BURST, 0, []), "loopback is exempt by default")
        eq(rate_limited(d), {"dropped": 0, "slipped": 0}, "nothing rate limited")
        check("rate limiting" not in d.stderr_text(), "no rate limiting logged")


def test_disabled():
    with Dnsd(config=DISABLED) as d:
        register(d)
        full, slipped, other = burst(d)
        eq((full, slipped, other), (BURST, 0, []), "rrl disabled: every answer sent")
        eq(rate_limited(d), {"dropped": 0, "slipped": 0}, "nothing rate limited")


def test_bad_options():
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "dnsd-rrl-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    cases = [
        ("dns = { rrl = { slip = 11; }; };", "1: dns.rrl.slip: must be 0..10"),
        ("dns = { rrl = { responses_per_second = 0; }; };",
         "1: dns.rrl.responses_per_second: must be 1..1000000"),
        ("dns = { rrl = { table_size = 100; }; };",
         "1: dns.rrl.table_size: must be 1024..16777216"),
        ("dns = { rrl = {\n exempt = [ \"10.0.0.1/8\" ]; }; };",
         "2: dns.rrl.exempt[0]: '10.0.0.1/8': not ADDR/PREFIX or ADDR"),
        ("dns = { rrl = { exempt = \"127.0.0.1\"; }; };", "dns.rrl.exempt: must be a list"),
        ("dns = { rrl = { burst = 5; }; };", "unknown option 'dns.rrl.burst'"),
    ]
    try:
        for text, want in cases:
            path = os.path.join(tmp, "dnsd.conf")
            write_file(path, text + "\n")
            rc, _, err = run_dnsd(["-c", path, "--listen", "127.0.0.1:%d" % free_port(),
                                   "--api", "unix:" + os.path.join(tmp, "api.sock")])
            check(rc != 0, "dnsd refuses %r" % text)
            contains(err, want, "error for %r" % text)
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


def test_all():
    test_limited()
    test_default_exempts_loopback()
    test_disabled()
    test_bad_options()


if __name__ == "__main__":
    main(test_all)
