#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# tcp: a 60-instance SRV answer is truncated over UDP and complete over TCP (RFC 7766);
# pipelined queries on one connection are all answered; an idle connection is closed after
# dns.tcp_idle_timeout_ms. Message framing: a query sent one byte at a time, a 0-length
# message, a 65535-byte message. The connection cap closes the longest-idle connection; a
# client that pipelines without reading is no longer read from (bounded buffering) and is
# closed once its answers stall for the idle timeout.

import socket
import struct
import time

import dns.flags
import dns.message
import dns.rcode

from dnsdtest import (Dnsd, check, eq, main, recv_exact, rrs, tcp_read_message,
                      tcp_send_query)

D = "service.internal."
N = 60
CONFIG = """
dns = {
    tcp_idle_timeout_ms = 500;
};
"""


def test():
    with Dnsd(config=CONFIG) as d:
        for i in range(N):
            d.put_instance("many", "m-%02d" % i, addresses=["10.2.0.%d" % (i + 1)],
                           port=1000 + i)

        r = d.query("_many._tcp." + D, "SRV", payload=1232)
        check(r.flags & dns.flags.TC, "UDP SRV with 60 instances has TC=1")
        rd = d.dig("_many._tcp." + D, "SRV", "+ignore")
        check("tc" in rd.flags, "dig +ignore sees TC (flags %s)" % rd.flags)

        r = d.query("_many._tcp." + D, "SRV", tcp=True)
        check(not r.flags & dns.flags.TC, "no TC over TCP")
        srv = rrs(r, "SRV")
        eq(len(srv), N, "all 60 SRV records over TCP")
        eq(sorted(int(x.split()[2]) for x in srv), list(range(1000, 1000 + N)),
           "SRV ports over TCP")
        rd = d.dig("_many._tcp." + D, "SRV", "+tcp")
        eq(len(rd.rdata("SRV")), N, "dig +tcp gets 60 SRV")
        rd = d.drill("_many._tcp." + D, "SRV", "-t")
        eq(len(rd.rdata("SRV")), N, "drill -t gets 60 SRV")

        # Three pipelined queries written at once on one connection.
        qs = [dns.message.make_query("_many._tcp." + D, "SRV"),
              dns.message.make_query("many." + D, "A"),
              dns.message.make_query("nosuch." + D, "A")]
        ids = [0x1001, 0x1002, 0x1003]
        for q, i in zip(qs, ids):
            q.id = i
        s = d.tcp_connect()
        try:
            blob = b""
            for q in qs:
                w = q.to_wire()
                blob += len(w).to_bytes(2, "big") + w
            s.sendall(blob)
            got = {}
            for _ in qs:
                m = dns.message.from_wire(tcp_read_message(s))
                got[m.id] = m
        finally:
            s.close()
        eq(sorted(got), ids, "three pipelined answers, matched by ID")
        eq(len(rrs(got[0x1001], "SRV")), N, "pipelined SRV answer")
        eq(len(rrs(got[0x1002], "A")), N, "pipelined A answer")
        eq(dns.rcode.to_text(got[0x1003].rcode()), "NXDOMAIN", "pipelined NXDOMAIN answer")

        # A connection that is used and then goes idle is also closed.
        s = d.tcp_connect()
        try:
            tcp_send_query(s, dns.message.make_query("many." + D, "A").to_wire())
            m = dns.message.from_wire(tcp_read_message(s))
            eq(len(rrs(m, "A")), N, "answer before going idle")
            t0 = time.monotonic()
            s.settimeout(5)
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                data = None
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        eq(data, b"", "server closes a used connection once idle")
        check(0.3 <= elapsed <= 3.0, "closed after about 500 ms idle (%.2f s)" % elapsed)

        # A connection that never sends anything is closed after the idle timeout.
        s = d.tcp_connect()
        t0 = time.monotonic()
        try:
            s.settimeout(5)
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                data = None
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        eq(data, b"", "server closes a silent connection")
        check(0.3 <= elapsed <= 3.0, "silent connection closed after about 500 ms (%.2f s)"
              % elapsed)

        r = d.query("many." + D, "A", tcp=True)
        eq(len(rrs(r, "A")), N, "new TCP connection still served")

        framing_is_robust(d)
        stalled_reader_is_closed_after_idle_timeout(d)

    with Dnsd(config=CAP_CONFIG) as d:
        for i in range(N):
            d.put_instance("many", "m-%02d" % i, addresses=["10.2.0.%d" % (i + 1)],
                           port=1000 + i)
        connection_cap_closes_longest_idle(d)
        client_that_does_not_read_is_not_read_from(d)


CAP_CONFIG = """
dns = {
    tcp_idle_timeout_ms = 10000;
    tcp_max_connections = 3;
};
"""


def query_wire(name, rdtype, qid):
    q = dns.message.make_query(name, rdtype)
    q.id = qid
    return q.to_wire()


def answer_id(sock):
    return dns.message.from_wire(tcp_read_message(sock)).id


def is_closed(sock, timeout):
    """True when the peer closes sock within timeout (after any unread answers)."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def framing_is_robust(d):
    """RFC 7766 §8: the 2-byte length frames a message however TCP segments it."""
    s = d.tcp_connect()
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        w = query_wire("many." + D, "A", 0x2001)
        for b in struct.pack("!H", len(w)) + w:
            s.sendall(bytes([b]))
            time.sleep(0.002)
        eq(answer_id(s), 0x2001, "query sent one byte per segment is answered")

        # A 0-length message is no query: skipped, and the connection stays usable.
        w = query_wire("many." + D, "A", 0x2002)
        s.sendall(b"\x00\x00" + struct.pack("!H", len(w)) + w)
        eq(answer_id(s), 0x2002, "query after a 0-length message is answered")

        # The largest message TCP can frame: a query padded with an EDNS option.
        head = struct.pack("!HHHHHH", 0x2003, 0x0100, 1, 0, 0, 1)
        head += b"\x04many\x07service\x08internal\x00" + struct.pack("!HH", 1, 1)
        pad = 65535 - len(head) - 11 - 4
        opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, pad + 4)
        opt += struct.pack("!HH", 12, pad) + b"\x00" * pad  # RFC 7830 padding
        big = head + opt
        eq(len(big), 65535, "largest message size")
        s.sendall(struct.pack("!H", len(big)) + big)
        m = dns.message.from_wire(tcp_read_message(s))
        eq(m.id, 0x2003, "65535-byte query answered")
        eq(dns.rcode.to_text(m.rcode()), "NOERROR", "65535-byte query rcode")
        eq(len(rrs(m, "A")), N, "65535-byte query gets the full answer")
    finally:
        s.close()


def connection_cap_closes_longest_idle(d):
    """RFC 7766 §6.2.3: at the cap the longest-idle connection makes room for a new one."""
    conns = []
    try:
        for i in range(3):
            s = d.tcp_connect()
            tcp_send_query(s, query_wire("many." + D, "A", 0x3000 + i))
            eq(answer_id(s), 0x3000 + i, "connection %d served" % i)
            conns.append(s)
            time.sleep(0.05)
        # Using the first connection again makes the second the longest idle.
        tcp_send_query(conns[0], query_wire("many." + D, "A", 0x3100))
        eq(answer_id(conns[0]), 0x3100, "first connection used again")
        time.sleep(0.05)
        s = d.tcp_connect()
        conns.append(s)
        tcp_send_query(s, query_wire("many." + D, "A", 0x3004))
        eq(answer_id(s), 0x3004, "fourth connection served at the cap")
        check(is_closed(conns[1], 2.0), "longest-idle connection closed at the cap")
        for i in (0, 2):
            tcp_send_query(conns[i], query_wire("many." + D, "A", 0x3200 + i))
            eq(answer_id(conns[i]), 0x3200 + i, "connection %d still open" % i)
    finally:
        for s in conns:
            s.close()


def server_rx_queue(port, client_port):
    """Bytes received but not yet read by dnsd on its end of the connection from
    client_port (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == port and
                    int(remote.split(":")[1], 16) == client_port):
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("no server socket for client port %d" % client_port)


def pipeline_without_reading(d, count):
    """Connect, send count SRV queries (4 KB answers) and read nothing; returns the socket
    and the ids sent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", d.port))
    blob = b""
    for i in range(count):
        w = query_wire("_many._tcp." + D, "SRV", i)
        blob += struct.pack("!H", len(w)) + w
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 3
    while sent < len(blob) and time.monotonic() < deadline:
        try:
            sent += s.send(blob[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.02)
    s.setblocking(True)
    return s, blob[sent:]


def client_that_does_not_read_is_not_read_from(d):
    """A client that sends thousands of queries and reads nothing must not make dnsd
    buffer thousands of answers: dnsd stops reading until the answers drain."""
    count = 4000  # 16 MB of answers
    s, unsent = pipeline_without_reading(d, count)
    try:
        time.sleep(2.0)  # ample time to read everything, were dnsd still reading
        queued = server_rx_queue(d.port, s.getsockname()[1])
        check(queued > 0, "dnsd stopped reading a client that does not read (%d bytes queued)"
              % queued)
        # UDP and other connections are still served meanwhile.
        r = d.query("many." + D, "A", payload=1232)
        eq(len(rrs(r, "A")), N, "UDP served while a TCP client is stalled")
        # Reading the answers lets dnsd read and answer the rest, in order.
        s.settimeout(10)
        if unsent:
            s.sendall(unsent)
        ids = [dns.message.from_wire(tcp_read_message(s)).id for _ in range(count)]
        eq(ids, list(range(count)), "every pipelined query answered in order")
    finally:
        s.close()


def stalled_reader_is_closed_after_idle_timeout(d):
    """Answers that cannot be written for a whole idle timeout end the connection."""
    count = 2000
    s, _ = pipeline_without_reading(d, count)
    try:
        time.sleep(1.5)  # three idle timeouts without write progress
        s.settimeout(2)
        got = 0
        closed = False
        try:
            while got < count:
                n = struct.unpack("!H", recv_exact(s, 2))[0]
                recv_exact(s, n)
                got += 1
        except Exception:  # noqa: BLE001 - a closed or reset connection ends the read
            closed = True
        check(closed and got < count,
              "stalled connection closed (%d of %d answers delivered)" % (got, count))
    finally:
        s.close()
    r = d.query("many." + D, "A", tcp=True)
    eq(len(rrs(r, "A")), N, "TCP still served after closing a stalled client")


main(test)
