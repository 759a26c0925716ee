#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# glibc, inside the namespaces: run by test.py as `unshare --net --mount -- python3 inner.py
# HOST_NETNS`, so the network namespace (and dnsd, bound to port 53 in it) and the bind
# mount over /etc/resolv.conf die with this process. Asserts what glibc's stub resolver
# (getent) finds through dnsd with the resolv.conf the README shows, and that a name outside
# dnsd's zones resolves through the forwarder dnsd is configured with.

import os
import socket
import sys
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from dnsdtest import Dnsd, check, eq, main, run, write_file

# The configuration the README's "Integrations" section shows.
RESOLV_CONF = """\
nameserver 127.0.0.1
search service.internal
options ndots:1 timeout:1 attempts:2
"""
# dnsd's forwarder, as in the README: a second DNS server on 127.0.0.2, authoritative for
# example.com (the namespace has no internet).
UPSTREAM = "127.0.0.2"
DNSD_CONF = 'forwarders = [ "%s:53" ];\n' % UPSTREAM


def serve_example_com(sock):
    """A tiny authoritative server for example.com: A 192.0.2.1, no AAAA, others NXDOMAIN."""
    while True:
        try:
            data, addr = sock.recvfrom(4096)
        except OSError:
            return
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        qname = q.question[0].name.to_text().lower()
        if qname != "example.com.":
            r.set_rcode(dns.rcode.NXDOMAIN)
        elif q.question[0].rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", "192.0.2.1"))
        sock.sendto(r.to_wire(), addr)


def start_upstream():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((UPSTREAM, 53))
    threading.Thread(target=serve_example_com, args=(sock,), daemon=True).start()
    return sock


def getent(*args):
    """(exit status, lines split into fields) of getent."""
    rc, out, err = run(["getent"] + list(args), timeout=20)
    return rc, [line.split() for line in out.splitlines()]


def hosts(name):
    """getent hosts NAME: (exit status, [(address, canonical name)])."""
    rc, lines = getent("hosts", name)
    return rc, [(f[0], f[1]) for f in lines if len(f) >= 2]


def ahosts(name):
    """getent ahosts NAME: (exit status, sorted distinct addresses, canonical name)."""
    rc, lines = getent("ahosts", name)
    addrs = sorted({f[0] for f in lines if f})
    canon = [f[2] for f in lines if len(f) >= 3]
    return rc, addrs, canon[0] if canon else None


def setup(host_netns):
    own = os.readlink("/proc/self/ns/net")
    check(own != host_netns, "running in a new network namespace (%s, host %s)"
          % (own, host_netns))
    rc, out, err = run(["ip", "link", "set", "lo", "up"])
    eq(rc, 0, "ip link set lo up (%s)" % err)
    rc, out, err = run(["ip", "-o", "link", "show"])
    eq([line.split()[1] for line in out.splitlines()], ["lo:"],
       "the namespace has the loopback interface only")


def bind_resolv_conf(tmp):
    path = os.path.join(tmp, "resolv.conf")
    write_file(path, RESOLV_CONF)
    rc, out, err = run(["mount", "--bind", path, "/etc/resolv.conf"])
    eq(rc, 0, "bind-mount resolv.conf (%s)" % err)
    with open("/etc/resolv.conf") as f:
        eq(f.read(), RESOLV_CONF, "/etc/resolv.conf inside the namespace")
    return path


def test():
    setup(sys.argv[1])
    upstream = start_upstream()
    d = Dnsd(config=DNSD_CONF, cli_listen=False,
             args=["--listen", "127.0.0.1:53", "--listen", "[::1]:53"])
    d.start()
    d.port = 53
    resolv = bind_resolv_conf(d.tmp)
    fq = "web.service.internal"

    # Nothing registered yet: web does not exist (NXDOMAIN, also via the search list).
    eq(hosts(fq), (2, []), "getent hosts %s before registering" % fq)
    eq(hosts("web"), (2, []), "getent hosts web before registering")

    d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--port", "80",
                  "--ttl", "300")
    eq(hosts(fq), (0, [("127.0.0.10", fq)]), "getent hosts %s" % fq)
    eq(hosts("web"), (0, [("127.0.0.10", fq)]),
       "getent hosts web: found through 'search service.internal'")
    eq(ahosts(fq), (0, ["127.0.0.10"], fq), "getent ahosts %s" % fq)
    eq(ahosts("web"), (0, ["127.0.0.10"], fq), "getent ahosts web (search list)")
    eq(hosts("web-1.web"), (0, [("127.0.0.10", "web-1.web.service.internal")]),
       "getent hosts web-1.web: an instance name, found through the search list")

    # A second instance with both families: getaddrinfo returns both A and AAAA; getent hosts
    # (gethostbyname2, AF_INET6 tried first) prints the AAAA.
    d.must_regctl("register", "web", "web-2", "--addr", "127.0.0.11", "--addr",
                  "2001:db8::11", "--port", "80", "--ttl", "300")
    eq(ahosts(fq), (0, ["127.0.0.10", "127.0.0.11", "2001:db8::11"], fq),
       "getent ahosts %s: both families" % fq)
    eq(ahosts("web"), (0, ["127.0.0.10", "127.0.0.11", "2001:db8::11"], fq),
       "getent ahosts web: both families")
    eq(hosts(fq), (0, [("2001:db8::11", fq)]), "getent hosts %s prefers the AAAA" % fq)

    # The same through dnsd's IPv6 listener.
    write_file(resolv, RESOLV_CONF.replace("127.0.0.1", "::1"))
    eq(ahosts("web"), (0, ["127.0.0.10", "127.0.0.11", "2001:db8::11"], fq),
       "getent ahosts web with 'nameserver ::1'")
    write_file(resolv, RESOLV_CONF)

    d.must_regctl("deregister", "web", "web-2")
    eq(ahosts(fq), (0, ["127.0.0.10"], fq), "getent ahosts after deregistering web-2")

    eq(hosts("nosuch.service.internal"), (2, []), "an unknown service: not found")
    # A name outside dnsd's zones resolves through its forwarder (example.com has a dot, so
    # it is tried as is first); the answer is the forwarder's, passed through.
    eq(hosts("example.com"), (0, [("192.0.2.1", "example.com")]),
       "getent hosts example.com through dnsd's forwarder")
    eq(ahosts("example.com"), (0, ["192.0.2.1"], "example.com"),
       "getent ahosts example.com through dnsd's forwarder")
    eq(hosts("nosuch.example.com"), (2, []), "the forwarder's NXDOMAIN: not found")
    rc, out, err = run(["dig", "+tries=1", "+time=2", "example.com", "A"], timeout=15)
    check("status: NOERROR" in out and "192.0.2.1" in out,
          "dig with the namespace's resolv.conf: example.com forwarded (%d): %s %s"
          % (rc, out, err))
    check("SERVER: 127.0.0.1#53" in out, "dig asked dnsd on 127.0.0.1:53: %s" % out)

    d.stop()
    upstream.close()
    print("inner: dnsd pid %d stopped" % d.proc.pid, flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: inner.py HOST_NETNS (run by test.py under unshare)")
    main(test)
