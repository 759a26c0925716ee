#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# zones: static RFC 1035 zone files served authoritatively beside the registry; a zone file
# for the service domain supplies its SOA; a broken zone stops start-up with file:line;
# SIGHUP reloads changed zones and keeps the old data when the new files are broken.

import os
import signal
import time

import dns.flags
import dns.rcode

from dnsdtest import (Dnsd, check, contains, eq, main, rrs, rrsets, run_dnsd, free_port,
                      wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
D = "service.internal."
E = "example.internal."


def read(name):
    with open(os.path.join(HERE, name)) as f:
        return f.read()


ZONES = {"example.internal.zone": read("example.internal.zone"),
         "service.internal.zone": read("service.internal.zone")}

# Line 4 has an invalid IPv4 address.
BROKEN = """$ORIGIN broken.internal.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
www IN A   192.0.2.300
"""


def test():
    with Dnsd(zones=ZONES) as d:
        d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--port", "80")

        rd = d.dig("www." + E, "A")
        eq(rd.rcode, "NOERROR", "static A rcode")
        check("aa" in rd.flags, "static A is authoritative (flags %s)" % rd.flags)
        eq(rd.rdata("A"), ["192.0.2.1"], "static A")
        eq([x.ttl for x in rd.answer], [300], "static A TTL from $TTL")
        rd = d.drill("www." + E, "AAAA")
        eq(rd.rdata("AAAA"), ["2001:db8::1"], "static AAAA")
        check("aa" in rd.flags, "static AAAA is authoritative")
        r = d.query("_http._tcp." + E, "SRV")
        eq(rrs(r, "SRV"), ["10 5 80 www." + E], "static SRV")
        check(r.flags & dns.flags.AA, "static SRV is authoritative")
        eq(rrs(r, "A", "additional"), ["192.0.2.1"], "static SRV target address in additional")
        r = d.query("www." + E, "TXT")
        eq(rrs(r, "TXT"), ['"hello world" "second string"'], "static TXT")
        rd = d.kdig("nosuch." + E, "A")
        eq(rd.rcode, "NXDOMAIN", "static zone NXDOMAIN")
        eq([x.type for x in rd.authority], ["SOA"], "static zone NXDOMAIN has SOA")
        r = d.query("ns1." + E, "MX")
        eq((dns.rcode.to_text(r.rcode()), len(r.answer)), ("NOERROR", 0), "static NODATA")
        r = d.query(E, "NS")
        eq(rrs(r, "NS"), ["ns1." + E], "static apex NS")

        # The service domain's SOA comes from its zone file.
        r = d.query(D, "SOA")
        soa = rrsets(r, "SOA")
        eq(len(soa), 1, "service domain SOA")
        s = soa[0][0]
        eq((s.mname.to_text(), s.rname.to_text(), s.refresh, s.retry, s.expire, s.minimum),
           ("ns1." + D, "admin." + D, 1800, 300, 604800, 30), "SOA fields from the zone file")
        check(s.serial >= 4000, "SOA serial from the zone file (%d)" % s.serial)
        eq(soa[0].ttl, 120, "SOA TTL from the zone file")
        r = d.query(D, "NS")
        eq(rrs(r, "NS"), ["ns1." + D], "service domain NS from the zone file")
        rd = d.dig("static." + D, "A")
        eq(rd.rdata("A"), ["192.0.2.99"], "static name in the service domain")
        check("aa" in rd.flags, "static name in service domain is authoritative")
        rd = d.dig("static." + D, "TXT")
        eq(rd.rdata("TXT"), ['"from the zone file"'], "static TXT in service domain")
        rd = d.dig("web." + D, "A")
        eq(rd.rdata("A"), ["127.0.0.10"], "registry name beside the static ones")
        check("aa" in rd.flags, "registry answer is authoritative")
        r = d.query("_web._tcp." + D, "SRV")
        eq(rrs(r, "SRV"), ["0 1 80 web-1.web." + D], "registry SRV beside the zone file")
        r = d.query("nosuch." + D, "A")
        eq(dns.rcode.to_text(r.rcode()), "NXDOMAIN", "unknown name in service domain")
        auth = rrsets(r, "SOA", "authority")
        eq(len(auth), 1, "NXDOMAIN SOA in service domain")
        eq(auth[0][0].mname.to_text(), "ns1." + D, "NXDOMAIN carries the file's SOA")
        rd = d.dig("example.com.", "A")
        eq(rd.rcode, "REFUSED", "outside every zone")

        # SIGHUP reloads a modified zone.
        with open(os.path.join(d.zones_dir, "example.internal.zone"), "w") as f:
            f.write(ZONES["example.internal.zone"].replace("192.0.2.1", "192.0.2.2")
                    + "new         IN A    192.0.2.3\n")
        d.send_signal(signal.SIGHUP)

        def reloaded():
            return rrs(d.query("www." + E, "A"), "A") == ["192.0.2.2"]

        check(wait_until(reloaded, 5), "SIGHUP picks up the modified zone")
        eq(rrs(d.query("new." + E, "A"), "A"), ["192.0.2.3"], "new name after reload")
        eq(d.dig("web." + D, "A").rdata("A"), ["127.0.0.10"], "registry survives reload")
        check(d.alive(), "dnsd still running after SIGHUP")

        # SIGHUP with a broken zone keeps the old data and logs an error.
        err_before = len(d.stderr_text())
        with open(os.path.join(d.zones_dir, "example.internal.zone"), "w") as f:
            f.write(ZONES["example.internal.zone"].replace("192.0.2.1", "192.0.2.77")
                    + "bad         IN A    300.1.1.1\n")
        d.send_signal(signal.SIGHUP)

        def logged():
            return any("error" in line.lower() and "example.internal.zone:11" in line
                       for line in d.stderr_text()[err_before:].splitlines())

        check(wait_until(logged, 5), "reload error logged naming file:line:\n%s"
              % d.stderr_text()[err_before:])
        time.sleep(0.2)
        check(d.alive(), "dnsd still running after a failed reload")
        eq(rrs(d.query("www." + E, "A"), "A"), ["192.0.2.2"], "old data kept after bad reload")
        eq(rrs(d.query("new." + E, "A"), "A"), ["192.0.2.3"], "old names kept after bad reload")
        eq(rrs(d.query("static." + D, "A"), "A"), ["192.0.2.99"], "other zone kept")
        eq(d.dig("web." + D, "A").rdata("A"), ["127.0.0.10"], "registry kept")

        # Fixed again: the next SIGHUP loads it.
        with open(os.path.join(d.zones_dir, "example.internal.zone"), "w") as f:
            f.write(ZONES["example.internal.zone"].replace("192.0.2.1", "192.0.2.5"))
        d.send_signal(signal.SIGHUP)
        check(wait_until(lambda: rrs(d.query("www." + E, "A"), "A") == ["192.0.2.5"], 5),
              "reload after the fix")
        eq(d.query("new." + E, "A").rcode(), dns.rcode.NXDOMAIN, "removed name is gone")

    # A zone with a syntax error at start: exit 2, stderr names file:line.
    bad = Dnsd(zones=dict(ZONES, **{"broken.internal.zone": BROKEN}))
    bad.write_zones(bad.zones)
    port = free_port()
    rc, out, err = run_dnsd(["--listen", "127.0.0.1:%d" % port, "--api", "unix:" + bad.sock,
                             "--pid-file", bad.pid_file, "--zones", bad.zones_dir])
    eq(rc, 2, "broken zone at start: exit status (stderr %r)" % err)
    contains(err, "broken.internal.zone:4", "stderr names file:line")
    check(not os.path.exists(bad.sock), "no API socket left behind")
    check(not os.path.exists(bad.pid_file), "no pid file left behind")


main(test)
