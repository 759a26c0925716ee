#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# health: a lapsed lease makes an instance critical ("lease expired"): it leaves A, SRV and
# instance answers within a second, the SOA serial moves and dnsd logs it once; a heartbeat
# brings it back; heartbeat statuses (warning answered unless only_passing, critical never);
# deregister_after removes a critical instance; answer TTLs stay within the lease and above
# dns.min_ttl; mass expiry (all leases overdue at once) enters self-preservation before
# the first lapse and holds every instance for at most max_duration.

import time

from dnsdtest import (Dnsd, a_answer, check, contains, count_lines, dnsd_config, eq,
                      instance_doc, main, rrsets, soa_serial, wait_until)

NO_PRESERVATION = {"enabled": False}


def list_row(d, service, iid):
    out = d.must_regctl("list", service)
    rows = [l for l in out.splitlines()[1:] if l.split() and l.split()[0] == iid]
    eq(len(rows), 1, "regctl list %s has one %s row:\n%s" % (service, iid, out))
    return rows[0]


def lapse_and_return(d):
    # solo has one instance: once its lease lapses every name of it is NXDOMAIN.
    d.must_regctl("register", "solo", "solo-1", "--addr", "127.0.0.70", "--port", "80",
                  "--ttl", "1")
    eq(a_answer(d, "solo"), ("NOERROR", ["127.0.0.70"]), "solo answered while leased")
    serial0 = soa_serial(d)
    t0 = time.monotonic()
    gone = wait_until(lambda: a_answer(d, "solo")[0] == "NXDOMAIN", 3.0, 0.05)
    took = time.monotonic() - t0
    check(gone, "solo A NXDOMAIN after its 1 s lease lapsed: %r" % (a_answer(d, "solo"),))
    check(took <= 2.5, "gone from DNS within a second of the lapse (%.2f s after register)"
          % took)
    eq(a_answer(d, "_solo._tcp", "SRV")[0], "NXDOMAIN", "solo SRV gone")
    eq(a_answer(d, "solo-1.solo")[0], "NXDOMAIN", "solo-1 instance name gone")
    check(soa_serial(d) > serial0, "SOA serial increased on the health change")

    inst = instance_doc(d, "solo", "solo-1")
    check(inst is not None, "lapsed instance still registered (deregister_after not reached)")
    eq((inst["health"], inst["reason"]), ("critical", "lease expired"), "API health of lapsed")
    check(inst["critical_for_ms"] > 0, "critical_for_ms counts: %r" % inst["critical_for_ms"])
    row = list_row(d, "solo", "solo-1")
    contains(row, "critical", "regctl list health")
    contains(row, "lease expired", "regctl list reason")
    contains(row, "expired", "regctl list lease left")

    for _ in range(30):
        a_answer(d, "solo")
    eq(count_lines(d.stderr_text(), "solo-1", "critical"), 1,
       "one log line for the lapse after 30 queries:\n%s" % d.stderr_text())

    serial1 = soa_serial(d)
    rc, out, err = d.regctl("heartbeat", "solo", "solo-1")
    eq((rc, out), (0, "renewed solo/solo-1 (lease 1s)\n"), "heartbeat of lapsed (%r)" % err)
    back = wait_until(lambda: a_answer(d, "solo") == ("NOERROR", ["127.0.0.70"]), 1.0, 0.02)
    check(back, "heartbeat brings solo back into DNS within a second")
    check(soa_serial(d) > serial1, "SOA serial increased when it came back")


def partial_lapse(d):
    # web keeps one healthy instance: the lapsed one leaves A and SRV, the other stays.
    d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.71", "--port", "81",
                  "--ttl", "1")
    d.must_regctl("register", "web", "web-2", "--addr", "127.0.0.72", "--port", "82",
                  "--ttl", "60")
    eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.71", "127.0.0.72"]), "both answered")
    ok = wait_until(lambda: a_answer(d, "web") == ("NOERROR", ["127.0.0.72"]), 3.0, 0.05)
    check(ok, "only web-2 answered after web-1 lapsed: %r" % (a_answer(d, "web"),))
    eq(a_answer(d, "_web._tcp", "SRV"), ("NOERROR", ["0 1 82 web-2.web.service.internal."]),
       "only web-2 in SRV")
    eq(a_answer(d, "web-1.web")[0], "NXDOMAIN", "lapsed instance name not answered")
    eq(a_answer(d, "web-2.web", "AAAA"), ("NOERROR", []), "NODATA: web-2 has no IPv6")


def statuses(d):
    d.must_regctl("register", "st", "st-1", "--addr", "127.0.0.73", "--port", "80",
                  "--ttl", "60")
    rc, out, err = d.regctl("heartbeat", "st", "st-1", "--status", "warning", "--note",
                            "disk 90%")
    eq((rc, out), (0, "renewed st/st-1 (lease 60s); health warning: heartbeat: disk 90%\n"),
       "heartbeat --status warning (%r)" % err)
    inst = instance_doc(d, "st", "st-1")
    eq((inst["health"], inst["reason"], inst["status"], inst["note"]),
       ("warning", "heartbeat: disk 90%", "warning", "disk 90%"), "warning in the API")
    eq(a_answer(d, "st"), ("NOERROR", ["127.0.0.73"]), "warning stays answered")
    row = list_row(d, "st", "st-1")
    contains(row, "warning", "list health")
    contains(row, "heartbeat: disk 90%", "list reason")

    rc, out, err = d.regctl("heartbeat", "st", "st-1", "--status", "critical")
    eq(rc, 0, "heartbeat --status critical (%r)" % err)
    contains(out, "health critical", "heartbeat output shows critical")
    ok = wait_until(lambda: a_answer(d, "st")[0] == "NXDOMAIN", 1.0, 0.02)
    check(ok, "critical is not answered: %r" % (a_answer(d, "st"),))
    rc, out, err = d.regctl("heartbeat", "st", "st-1")
    eq((rc, out), (0, "renewed st/st-1 (lease 60s)\n"), "heartbeat passing again")
    ok = wait_until(lambda: a_answer(d, "st") == ("NOERROR", ["127.0.0.73"]), 1.0, 0.02)
    check(ok, "passing again is answered")
    rc, out, err = d.regctl("heartbeat", "st", "st-1", "--status", "bad")
    eq(rc, 2, "bad --status is a usage error")


def deregister_after(d):
    # The config says 2s; gone-2 says 1s for itself; keep-1 says never (0s).
    d.must_regctl("register", "gone", "gone-1", "--addr", "127.0.0.74", "--port", "80",
                  "--ttl", "1")
    d.must_regctl("register", "gone", "gone-2", "--addr", "127.0.0.75", "--port", "80",
                  "--ttl", "1", "--deregister-after", "1s")
    d.must_regctl("register", "gone", "keep-1", "--addr", "127.0.0.76", "--port", "80",
                  "--ttl", "1", "--deregister-after", "0s")
    inst = instance_doc(d, "gone", "gone-1")
    eq(inst["deregister_after"], "2s", "configured default deregister_after echoed")
    t0 = time.monotonic()

    def ids():
        _, doc, _ = d.api("GET", "/v1/services/gone")
        return sorted(i["id"] for i in doc["instances"])

    ok = wait_until(lambda: "gone-2" not in ids(), 4.0, 0.05)
    t2 = time.monotonic() - t0
    check(ok, "gone-2 removed after 1 s critical: %r" % ids())
    check(t2 >= 1.5, "gone-2 not removed before lease 1 s + 1 s critical (%.2f s)" % t2)
    check("gone-1" in ids(), "gone-1 still listed at %.2f s" % (time.monotonic() - t0))
    ok = wait_until(lambda: "gone-1" not in ids(), 4.0, 0.05)
    check(ok, "gone-1 removed after the configured 2 s critical: %r" % ids())
    check(time.monotonic() - t0 >= 2.5, "gone-1 not removed before 1 s + 2 s")
    eq(ids(), ["keep-1"], "deregister_after 0s is never removed")
    rc, out, err = d.regctl("heartbeat", "gone", "gone-1")
    eq(rc, 1, "heartbeat of a removed instance is refused (%r %r)" % (out, err))
    contains(err, "not registered", "refusal says why")
    contains(d.stderr_text(), "gone-1", "removal logged")


def ttls(d):
    # dns.ttl 5, dns.min_ttl 2: TTL = max(2, min(5, lease left)).
    d.must_regctl("register", "brief", "brief-1", "--addr", "127.0.0.77", "--port", "80",
                  "--ttl", "4")
    t0 = time.monotonic()
    for name, rtype in (("brief", "A"), ("_brief._tcp", "SRV"), ("brief-1.brief", "A"),
                        ("brief-1.brief", "TXT")):
        r = d.query(name + ".service.internal.", rtype)
        sets = rrsets(r, rtype)
        eq(len(sets), 1, "%s %s answered" % (name, rtype))
        check(2 <= sets[0].ttl <= 4, "%s %s TTL %d within [min_ttl 2, lease 4]"
              % (name, rtype, sets[0].ttl))
    time.sleep(max(0.0, 3.2 - (time.monotonic() - t0)))
    r = d.query("brief.service.internal.", "A")
    sets = rrsets(r, "A")
    eq(len(sets), 1, "brief still answered at 3.2 s")
    eq(sets[0].ttl, 2, "TTL floored at dns.min_ttl with under 1 s of lease left")
    r = d.query("web.service.internal.", "A")
    sets = rrsets(r, "A")
    check(len(sets) == 1 and sets[0].ttl == 5, "long lease: TTL is dns.ttl 5: %r" % sets)


def only_passing():
    config = dnsd_config(health={"only_passing": True}, preservation=NO_PRESERVATION)
    with Dnsd(config=config) as d:
        d.must_regctl("register", "op", "op-1", "--addr", "127.0.0.80", "--port", "80")
        d.must_regctl("register", "op", "op-2", "--addr", "127.0.0.81", "--port", "80")
        d.must_regctl("heartbeat", "op", "op-1", "--status", "warning")
        ok = wait_until(lambda: a_answer(d, "op") == ("NOERROR", ["127.0.0.81"]), 1.0, 0.02)
        check(ok, "only_passing: warning op-1 not answered: %r" % (a_answer(d, "op"),))
        eq(instance_doc(d, "op", "op-1")["health"], "warning", "op-1 is warning")
        d.must_regctl("heartbeat", "op", "op-1")
        ok = wait_until(lambda: a_answer(d, "op") == ("NOERROR", ["127.0.0.80", "127.0.0.81"]),
                        1.0, 0.02)
        check(ok, "only_passing: passing op-1 answered again")


def mass_expiry():
    config = dnsd_config(preservation={"enabled": True, "threshold": 0.5, "min_instances": 3,
                                       "max_duration": "2s"})
    with Dnsd(config=config) as d:
        addrs = ["127.0.0.%d" % (90 + i) for i in range(6)]
        # One quick burst of registrations with 2 s leases, then silence (a partition as
        # dnsd sees it): all 6 turn overdue (80% of the lease without a heartbeat) before
        # the first of them lapses, so self-preservation starts before that first lapse.
        t_reg = time.monotonic()
        for i, addr in enumerate(addrs):
            status, doc, _ = d.api("PUT", "/v1/services/mass/instances/mass-%d" % i,
                                   {"addresses": [addr], "port": 80, "ttl": 2})
            eq(status, 201, "register mass-%d: %r" % (i, doc))
        spread = time.monotonic() - t_reg
        check(spread < 0.35, "the 6 registrations took %.2f s: they must fit well within the "
              "last 20%% (0.4 s) of the 2 s lease for this scenario to hold" % spread)
        _, doc, _ = d.api("GET", "/v1/health")
        eq(doc.get("preserving"), False, "not preserving before the lapse: %r" % doc)
        t0 = time.monotonic()
        ok = wait_until(lambda: d.api("GET", "/v1/health")[1].get("preserving"), 3.5, 0.05)
        check(ok, "GET /v1/health shows preserving: true once the first of 6 overdue leases "
              "lapsed")
        check(count_lines(d.stderr_text(), "self-preservation ON") == 1,
              "self-preservation warning logged:\n%s" % d.stderr_text())
        # Every instance is held, the first to lapse included: none left DNS.
        eq(a_answer(d, "mass"), ("NOERROR", sorted(addrs)),
           "all 6 still answered in self-preservation")
        for i in range(6):
            doc = instance_doc(d, "mass", "mass-%d" % i)
            eq((doc["health"], doc["reason"]), ("passing", ""), "mass-%d held: %r" % (i, doc))
        time.sleep(0.5)
        eq(a_answer(d, "mass"), ("NOERROR", sorted(addrs)), "all 6 still answered 0.5 s later")
        ok = wait_until(lambda: a_answer(d, "mass")[0] == "NXDOMAIN", 4.0, 0.05)
        took = time.monotonic() - t0
        check(ok, "after max_duration 2s the held instances turn critical and leave DNS: %r"
              % (a_answer(d, "mass"),))
        check(took >= 3.0, "not before the lapse (2 s) plus max_duration (2 s): %.2f s" % took)
        _, doc, _ = d.api("GET", "/v1/health")
        eq(doc.get("preserving"), False, "self-preservation left: %r" % doc)
        for i in range(6):
            eq(instance_doc(d, "mass", "mass-%d" % i)["reason"], "lease expired",
               "mass-%d critical with lease expired" % i)


def test():
    config = dnsd_config(dns={"ttl": 5, "min_ttl": 2}, health={"deregister_after": "2s"},
                         preservation=NO_PRESERVATION)
    with Dnsd(config=config) as d:
        lapse_and_return(d)
        partial_lapse(d)
        statuses(d)
        deregister_after(d)
        ttls(d)
    only_passing()
    mass_expiry()


main(test)
