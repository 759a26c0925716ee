#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# maintenance: `regctl maintenance SERVICE ID on --reason R` takes an instance out of DNS
# at once and lists it as maintenance with its reason; heartbeats do not bring it back;
# `off` puts it back. Unknown instances and bad states are refused.

import time

from dnsdtest import Dnsd, a_answer, check, contains, eq, instance_doc, main, soa_serial, wait_until


def test():
    with Dnsd() as d:
        d.must_regctl("register", "maint", "m-1", "--addr", "127.0.0.50", "--port", "80")
        d.must_regctl("register", "maint", "m-2", "--addr", "127.0.0.51", "--port", "80")
        eq(a_answer(d, "maint"), ("NOERROR", ["127.0.0.50", "127.0.0.51"]), "both answered")
        serial0 = soa_serial(d)

        rc, out, err = d.regctl("maintenance", "maint", "m-1", "on", "--reason", "deploy")
        eq((rc, out), (0, "maint/m-1 maintenance on (deploy)\n"), "maintenance on (%r)" % err)
        ok = wait_until(lambda: a_answer(d, "maint") == ("NOERROR", ["127.0.0.51"]), 1.0, 0.02)
        check(ok, "m-1 in maintenance is not answered: %r" % (a_answer(d, "maint"),))
        eq(a_answer(d, "m-1.maint")[0], "NXDOMAIN", "m-1 instance name not answered")
        eq(len(a_answer(d, "_maint._tcp", "SRV")[1]), 1, "one SRV left")
        check(soa_serial(d) > serial0, "SOA serial moved")
        inst = instance_doc(d, "maint", "m-1")
        eq((inst["health"], inst["reason"], inst["maintenance"]),
           ("maintenance", "deploy", {"enabled": True, "reason": "deploy"}), "API shows it")
        out = d.must_regctl("list", "maint")
        row = [l for l in out.splitlines() if l.startswith("m-1 ")]
        eq(len(row), 1, "m-1 listed:\n%s" % out)
        contains(row[0], "maintenance", "list health")
        contains(row[0], "deploy", "list reason")

        rc, out, err = d.regctl("heartbeat", "maint", "m-1")
        eq((rc, out), (0, "renewed maint/m-1 (lease 30s); health maintenance: deploy\n"),
           "heartbeat keeps maintenance (%r)" % err)
        time.sleep(0.3)
        eq(a_answer(d, "maint"), ("NOERROR", ["127.0.0.51"]), "still out after a heartbeat")

        rc, out, err = d.regctl("maintenance", "maint", "m-2", "on")
        eq((rc, out), (0, "maint/m-2 maintenance on (maintenance mode)\n"),
           "maintenance on without a reason takes the default (%r)" % err)
        ok = wait_until(lambda: a_answer(d, "maint")[0] == "NXDOMAIN", 1.0, 0.02)
        check(ok, "both in maintenance: NXDOMAIN: %r" % (a_answer(d, "maint"),))

        rc, out, err = d.regctl("maintenance", "maint", "m-1", "off")
        eq((rc, out), (0, "maint/m-1 maintenance off\n"), "maintenance off (%r)" % err)
        d.must_regctl("maintenance", "maint", "m-2", "off")
        ok = wait_until(lambda: a_answer(d, "maint") == ("NOERROR", ["127.0.0.50", "127.0.0.51"]),
                        1.0, 0.02)
        check(ok, "both back after off: %r" % (a_answer(d, "maint"),))
        inst = instance_doc(d, "maint", "m-1")
        eq((inst["health"], inst["reason"], inst["maintenance"]["enabled"]),
           ("passing", "", False), "API after off")

        rc, out, err = d.regctl("maintenance", "maint", "nope", "on")
        eq(rc, 1, "maintenance of an unknown instance refused (%r %r)" % (out, err))
        contains(err, "not registered", "refusal message")
        rc, out, err = d.regctl("maintenance", "maint", "m-1", "maybe")
        eq(rc, 2, "bad state is a usage error")
        contains(err, "expected on or off", "usage message")


main(test)
