#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# tcp: a 60-instance SRV answer is truncated over UDP and complete over TCP (RFC 7766);
# pipelined queries on one connection are all answered; an idle connection is closed after
# dns.tcp_idle_timeout_ms. Message framing: a query sent one byte at a time, a 0-length
# message, a 65535-byte message. The connection cap closes the longest-idle connection; a
# client that pipelines without reading is no longer read from (bounded buffering) and is
# closed once its answers stall for the idle timeout. A busy connection is closed at
# dns.tcp_max_connection_ms however often it sends queries. 600 idle connections from one
# attacker (more than the default cap) do not lock out a resolver, and dnsd's RSS stays
# bounded.

import resource
import select
import socket
import struct
import time

import dns.flags
import dns.message
import dns.rcode

from dnsdtest import (CheckFailed, Dnsd, check, eq, main, recv_exact, rrs, tcp_read_message,
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

    with Dnsd(config=LIFETIME_CONFIG) as d:
        d.put_instance("web", "web-1", addresses=["10.3.0.1"], port=80)
        busy_connection_is_closed_at_its_lifetime(d)

    with Dnsd() as d:  # dns.tcp_max_connections and timeouts at their defaults
        d.put_instance("web", "web-1", addresses=["10.3.0.1"], port=80)
        idle_flood_does_not_lock_out_a_resolver(d)


LIFETIME_CONFIG = """
dns = {
    tcp_idle_timeout_ms = 1000;
    tcp_max_connection_ms = 1500;
};
"""
FLOOD = 600
DEFAULT_MAX_CONNECTIONS = 512  # dns.tcp_max_connections default (dnsd.conf(5))
RSS_GROWTH_MAX_KIB = 32 * 1024


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


def busy_connection_is_closed_at_its_lifetime(d):
    """A client sending a query every 100 ms never goes idle (idle timeout 1 s), yet its
    connection ends at dns.tcp_max_connection_ms (1.5 s); every query it sent before the
    end was answered."""
    s = d.tcp_connect()
    t0 = time.monotonic()
    answered = 0
    closed_at = None
    try:
        s.settimeout(2)
        for i in range(60):  # 6 s at most
            try:
                tcp_send_query(s, query_wire("web." + D, "A", 0x5000 + i))
                m = dns.message.from_wire(tcp_read_message(s))
            except (CheckFailed, OSError):  # closed or reset by dnsd
                closed_at = time.monotonic() - t0
                break
            eq(m.id, 0x5000 + i, "busy connection answer %d" % i)
            answered += 1
            time.sleep(0.1)
    finally:
        s.close()
    print("lifetime: busy connection closed at %s s after %d answers" % (
        "%.2f" % closed_at if closed_at is not None else "never", answered))
    check(closed_at is not None, "busy connection closed (%d answers)" % answered)
    check(1.4 <= closed_at <= 3.0,
          "closed at the 1.5 s lifetime, past the 1 s idle timeout (%.2f s)" % closed_at)
    check(answered >= 10, "answered every 100 ms until then (%d answers)" % answered)
    r = d.query("web." + D, "A", tcp=True)
    eq(rrs(r, "A"), ["10.3.0.1"], "a new connection is served after the lifetime close")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def closed_by_peer(socks, timeout):
    """Indexes of the sockets in socks that the peer has closed (readable at EOF)."""
    poller = select.poll()
    by_fd = {}
    for i, s in enumerate(socks):
        poller.register(s, select.POLLIN)
        by_fd[s.fileno()] = i
    closed = set()
    for fd, _ in poller.poll(int(timeout * 1000)):
        i = by_fd[fd]
        try:
            if socks[i].recv(1) == b"":
                closed.add(i)
        except ConnectionError:
            closed.add(i)
    return closed


def idle_flood_does_not_lock_out_a_resolver(d):
    """RFC 7766 §6.2.3 and issue 6: one attacker opens 600 idle connections, more than the
    default cap; a resolver connecting afterwards is still answered promptly, because the
    longest-idle connections make room, and dnsd's memory stays bounded."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FLOOD + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, FLOOD + 256), hard))
    rss_before = rss_kib(d.pid())
    flood = []
    try:
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
        time.sleep(0.5)  # let dnsd accept the backlog
        t0 = time.monotonic()
        r = d.query("web." + D, "A", tcp=True, timeout=2)
        elapsed = time.monotonic() - t0
        eq(rrs(r, "A"), ["10.3.0.1"], "resolver answered over TCP during the flood")
        check(elapsed < 1.0, "resolver answered within 1 s during the flood (%.3f s)"
              % elapsed)
        # A resolver that keeps its connection open is served again on it.
        s = d.tcp_connect()
        try:
            for i in range(3):
                tcp_send_query(s, query_wire("web." + D, "A", 0x6000 + i))
                eq(answer_id(s), 0x6000 + i, "resolver connection query %d" % i)
        finally:
            s.close()
        closed = closed_by_peer(flood, 0.5)
        want = FLOOD + 2 - DEFAULT_MAX_CONNECTIONS
        check(len(closed) >= want - 2,
              "the cap closed the longest-idle flood connections (%d closed, about %d due)"
              % (len(closed), want))
        check(max(closed) < FLOOD // 3,
              "the connections closed are the oldest ones (latest index %d)" % max(closed))
        rss_during = rss_kib(d.pid())
        print("flood: %d connections, %d closed by the cap, resolver answered in %.3f s, "
              "RSS %d -> %d KiB" % (FLOOD, len(closed), elapsed, rss_before, rss_during))
        check(rss_during - rss_before < RSS_GROWTH_MAX_KIB,
              "RSS bounded with %d connections (%d -> %d KiB)"
              % (FLOOD, rss_before, rss_during))
    finally:
        for s in flood:
            s.close()
    r = d.query("web." + D, "A", tcp=True)
    eq(rrs(r, "A"), ["10.3.0.1"], "TCP served after the flood closed")
    check(d.alive(), "dnsd still running after the flood")


main(test)
