#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# signals: SIGTERM and SIGINT shut dnsd down cleanly (exit 0, API socket and pid file
# removed) even with a DNS-over-TCP connection open in the middle of a message and an API
# connection open.

import os
import signal
import socket
import struct

import dns.message

from dnsdtest import Dnsd, check, eq, main, rrs, tcp_read_message, tcp_send_query

D = "service.internal."


def scenario(sig):
    name = signal.Signals(sig).name
    d = Dnsd()
    d.start()
    d.put_instance("web", "web-1", addresses=["127.0.0.10"], port=80)
    check(os.path.exists(d.sock), "%s: API socket exists while running" % name)
    check(os.path.exists(d.pid_file), "%s: pid file exists while running" % name)

    # One TCP connection that has had an answer and then sent half a message.
    s = d.tcp_connect()
    tcp_send_query(s, dns.message.make_query("web." + D, "A").to_wire())
    m = dns.message.from_wire(tcp_read_message(s))
    eq(rrs(m, "A"), ["127.0.0.10"], "%s: TCP answer before the signal" % name)
    wire = dns.message.make_query("web." + D, "A").to_wire()
    s.sendall(struct.pack("!H", len(wire)) + wire[:7])
    # Another that sent only one byte of the length prefix.
    s2 = d.tcp_connect()
    s2.sendall(b"\x00")
    # And an idle API connection.
    api = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    api.settimeout(5)
    api.connect(d.sock)
    api.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # headers not finished

    try:
        d.stop(sig)  # checks exit 0, socket and pid file removed, no sanitizer report
    finally:
        for c in (s, s2, api):
            c.close()
    eq(d.exit_code, 0, "%s: exit status" % name)
    check(not os.path.exists(d.sock), "%s: API socket removed" % name)
    check(not os.path.exists(d.pid_file), "%s: pid file removed" % name)
    d.cleanup()


def test():
    scenario(signal.SIGTERM)
    scenario(signal.SIGINT)

    # SIGTERM while idle right after start-up, with no client at all.
    d = Dnsd()
    d.start()
    d.stop(signal.SIGTERM)
    d.cleanup()


main(test)
