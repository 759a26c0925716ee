#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# udpbatch: dnsd reads UDP queries in recvmmsg batches and sends each batch's answers with
# one sendmmsg. A burst from many clients, interleaved, over IPv4 and IPv6: every client
# gets exactly its own answers (its IDs, its service's address), also when one client
# closes its socket before the answers arrive.

import socket
import time

import dns.message

from dnsdtest import HAVE_IPV6, Dnsd, eq, main, rrs

D = "service.internal."
CLIENTS = 8
PER_CLIENT = 40


def client_sockets(port):
    socks = []
    for k in range(CLIENTS):
        v6 = HAVE_IPV6 and k % 2 == 1
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect(("::1" if v6 else "127.0.0.1", port))
        socks.append(s)
    return socks


def read_answers(s, want, budget_s):
    got = {}
    s.settimeout(0.2)
    deadline = time.monotonic() + budget_s
    while len(got) < want and time.monotonic() < deadline:
        try:
            m = dns.message.from_wire(s.recv(65536))
        except socket.timeout:
            continue
        got.setdefault(m.id, []).append(m)
    return got


def test():
    with Dnsd() as d:
        for k in range(CLIENTS):
            d.put_instance("svc%d" % k, "i", addresses=["127.0.1.%d" % (k + 1)], port=80)
        socks = client_sockets(d.port)
        # The last client leaves before its answers come: dnsd sends them to a closed port.
        gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gone.connect(("127.0.0.1", d.port))
        try:
            wires = [[None] * PER_CLIENT for _ in range(CLIENTS)]
            for k in range(CLIENTS):
                for j in range(PER_CLIENT):
                    q = dns.message.make_query("svc%d.%s" % (k, D), "A")
                    q.id = k * 1000 + j
                    wires[k][j] = q.to_wire()
            for j in range(PER_CLIENT):
                for k in range(CLIENTS):
                    socks[k].send(wires[k][j])
                gone.send(wires[0][j])
            gone.close()
            for k, s in enumerate(socks):
                got = read_answers(s, PER_CLIENT, 5)
                eq(sorted(got), [k * 1000 + j for j in range(PER_CLIENT)],
                   "client %d got its %d answers, and only those" % (k, PER_CLIENT))
                eq([i for i, ms in got.items() if len(ms) != 1], [],
                   "client %d: each answer once" % k)
                eq(sorted({a for ms in got.values() for a in rrs(ms[0], "A")}),
                   ["127.0.1.%d" % (k + 1)], "client %d: its service's address" % k)
        finally:
            for s in socks:
                s.close()
        # Still answering after the burst.
        eq(rrs(d.query("svc0." + D, "A"), "A"), ["127.0.1.1"], "answers after the burst")


main(test)
