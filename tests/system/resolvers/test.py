#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# resolvers: the real unbound (stub-zone) and dnsmasq (server=/service.internal/...) in
# front of dnsd answer service names (A, SRV with the targets' addresses, AAAA, an instance's
# TXT) that come from dnsd, see registration changes once their cache lapses, and refuse
# every other name (neither is given an upstream, so nothing leaves 127.0.0.1).

import os
import signal
import subprocess
import time

from dnsdtest import (CheckFailed, Dnsd, check, eq, free_port, main, parse_client_output,
                      run, wait_until, write_file)

D = "service.internal."
START_TIMEOUT_S = 10.0

# The configuration the README's "Integrations" section shows; @...@ filled in below.
UNBOUND_CONF = """\
server:
    interface: 127.0.0.1@@PORT@
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # dnsd's names only: every other name is refused, so unbound never goes to the root.
    local-zone: "." refuse
    local-zone: "service.internal." transparent
    domain-insecure: "service.internal."
    # Test-only: run unprivileged in the foreground from a temporary directory.
    username: ""
    chroot: ""
    directory: "@TMP@"
    pidfile: "@TMP@/unbound.pid"
    use-syslog: no
    logfile: ""
    num-threads: 1
    verbosity: 1
remote-control:
    control-enable: no
stub-zone:
    name: "service.internal."
    stub-addr: 127.0.0.1@@DNSDPORT@
"""


class Forwarder:
    """A real resolver program running in the foreground on 127.0.0.1:port."""

    def __init__(self, name, argv, port, tmp):
        self.name = name
        self.port = port
        self.log = os.path.join(tmp, name + ".log")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.argv = argv

    def dig(self, name, rdtype, *opts):
        rc, out, err = run(["dig", "@127.0.0.1", "-p", str(self.port), "+tries=1", "+time=2",
                            name, rdtype] + list(opts), timeout=15)
        check(rc == 0 or "status:" in out, "%s: dig %s %s failed (%d): %s %s"
              % (self.name, name, rdtype, rc, out, err))
        return parse_client_output(out)

    def wait_ready(self):
        """Until the forwarder answers a query at all (any rcode)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed("%s exited with %d:\n%s" % (self.name, self.proc.returncode,
                                                              self.log_text()))
            rc, out, _ = run(["dig", "@127.0.0.1", "-p", str(self.port), "+tries=1",
                              "+time=1", D, "SOA"], timeout=10)
            if "status:" in out:
                return
            time.sleep(0.1)
        raise CheckFailed("%s did not answer within %.0f s:\n%s" % (self.name, START_TIMEOUT_S,
                                                                  self.log_text()))

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise CheckFailed("%s ignored SIGTERM for 10 s" % self.name)
        check(self.proc.returncode == 0, "%s exit status %d after SIGTERM:\n%s"
              % (self.name, self.proc.returncode, self.log_text()))


def start_unbound(d):
    port = free_port()
    conf = os.path.join(d.tmp, "unbound.conf")
    write_file(conf, UNBOUND_CONF.replace("@PORT@", str(port)).replace("@TMP@", d.tmp)
               .replace("@DNSDPORT@", str(d.port)))
    rc, out, err = run(["unbound-checkconf", conf])
    eq(rc, 0, "unbound-checkconf accepts the config (%s %s)" % (out, err))
    return Forwarder("unbound", ["unbound", "-d", "-c", conf], port, d.tmp)


def start_dnsmasq(d):
    port = free_port()
    argv = ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--port=%d" % port, "--listen-address=127.0.0.1", "--bind-interfaces",
            "--server=/service.internal/127.0.0.1#%d" % d.port,
            "--pid-file=" + os.path.join(d.tmp, "dnsmasq.pid"), "--user=root",
            "--log-facility=-"]
    return Forwarder("dnsmasq", argv, port, d.tmp)


def check_forwarder(fw, serial):
    """The service names through fw; serial tells the registrations of this round apart."""
    n = fw.name
    web_a = sorted(["127.0.0.10", "127.0.0.%d" % (10 + serial)])

    r = fw.dig("web." + D, "A")
    eq(r.rcode, "NOERROR", "%s: web A rcode" % n)
    eq(sorted(r.rdata("A")), web_a, "%s: web A from dnsd" % n)
    check("ra" in r.flags, "%s: RA set, a recursive answer (flags %s)" % (n, r.flags))
    if n == "unbound":
        # dnsmasq passes dnsd's AA bit through; unbound answers as a resolver.
        check("aa" not in r.flags, "unbound: AA clear (flags %s)" % r.flags)
    check(all(rec.ttl <= 5 for rec in r.answer), "%s: TTL at most dnsd's 5 s: %r"
          % (n, r.answer))

    r = fw.dig("_web._tcp." + D, "SRV")
    eq(r.rcode, "NOERROR", "%s: SRV rcode" % n)
    srv = sorted(x.split() for x in r.rdata("SRV"))
    eq([(s[2], s[3]) for s in srv],
       [("8080", "web-1.web." + D), ("%d" % (8080 + serial), "web-%d.web.%s" % (1 + serial, D))],
       "%s: SRV port and target per instance" % n)

    # The SRV target names resolve through the forwarder too (from its cache of the
    # additional section or by asking dnsd).
    r = fw.dig("web-%d.web.%s" % (1 + serial, D), "A")
    eq(r.rdata("A"), ["127.0.0.%d" % (10 + serial)], "%s: SRV target A" % n)

    r = fw.dig("web-1.web." + D, "AAAA")
    eq(r.rdata("AAAA"), ["2001:db8::10"], "%s: instance AAAA" % n)
    r = fw.dig("web-1.web." + D, "TXT")
    eq(r.rdata("TXT"), ['"version=1.4"'], "%s: instance TXT (metadata)" % n)

    r = fw.dig("nosuch." + D, "A")
    eq(r.rcode, "NXDOMAIN", "%s: unknown service is NXDOMAIN from dnsd" % n)
    check(any(rec.type == "SOA" for rec in r.authority),
          "%s: NXDOMAIN carries dnsd's SOA: %r" % (n, r.authority))

    # Neither forwarder has an upstream for other names: they are refused, not looked up.
    r = fw.dig("example.com.", "A")
    eq(r.rcode, "REFUSED", "%s: a name outside service.internal" % n)


def test():
    with Dnsd() as d:
        d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--addr",
                      "2001:db8::10", "--port", "8080", "--meta", "version=1.4", "--ttl", "300")
        for serial, start in ((1, start_unbound), (2, start_dnsmasq)):
            # A second instance new to this round, so the answers cannot come from a cache
            # filled by the round before.
            d.must_regctl("register", "web", "web-%d" % (1 + serial), "--addr",
                          "127.0.0.%d" % (10 + serial), "--port", str(8080 + serial),
                          "--ttl", "300")
            fw = start(d)
            try:
                fw.wait_ready()
                check_forwarder(fw, serial)

                # Deregistering shows through once the 5 s TTL ran out.
                d.must_regctl("deregister", "web", "web-%d" % (1 + serial))

                def gone():
                    return fw.dig("web." + D, "A").rdata("A") == ["127.0.0.10"]

                check(wait_until(gone, 10, 0.25),
                      "%s: deregistered instance gone from web A within 10 s" % fw.name)
            except CheckFailed:
                print("---- %s log ----\n%s" % (fw.name, fw.log_text()), flush=True)
                fw.proc.kill()
                raise
            fw.stop()


main(test)
