#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# api: the registration API over its Unix socket with curl: 201/200, 400 with the field at
# fault, 404, 405 with Allow, 413 over api_options.max_body, the GET shapes, /v1/health, a
# rejected request changing nothing, and the socket file mode.

import os
import stat

from dnsdtest import Dnsd, check, contains, eq, main

MAX_BODY = 512
CONFIG = """
api_options = {
    max_body = %d;
};
""" % MAX_BODY

INSTANCE_KEYS = {"service", "id", "addresses", "port", "proto", "priority", "weight", "tags",
                 "meta", "ttl", "health", "lease_remaining_ms", "last_heartbeat_ms_ago",
                 "registered_ms_ago"}
VOLATILE = ("lease_remaining_ms", "last_heartbeat_ms_ago", "registered_ms_ago")

WEB1 = "/v1/services/web/instances/web-1"
GOOD = {"addresses": ["127.0.0.10", "2001:db8::10"], "port": 8080, "tags": ["primary"],
        "meta": {"version": "1.4"}}


def stable(doc):
    """A GET /v1/services/web reply without the clock-driven fields."""
    return [{k: v for k, v in inst.items() if k not in VOLATILE} for inst in doc["instances"]]


def expect_error(d, method, path, body, status, field, what, raw=None):
    got, doc, hdr = d.api(method, path, body, raw=raw)
    eq(got, status, "%s: status (body %r)" % (what, hdr["_body"]))
    check(isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"],
          "%s: JSON error message (%r)" % (what, hdr["_body"]))
    check(hdr["_body"].endswith("\n"), "%s: reply ends in newline" % what)
    if field is None:
        check("field" not in doc, "%s: no field (%r)" % (what, doc))
    else:
        eq(doc.get("field"), field, "%s: field" % what)
    return doc, hdr


def test():
    with Dnsd(config=CONFIG) as d:
        mode = stat.S_IMODE(os.stat(d.sock).st_mode)
        eq(oct(mode), oct(0o660), "API socket file mode")
        check(stat.S_ISSOCK(os.stat(d.sock).st_mode), "API path is a socket")

        status, doc, hdr = d.api("GET", "/v1/health")
        eq(status, 200, "health status")
        eq(doc, {"status": "ok", "services": 0, "instances": 0}, "health when empty")
        check(hdr["_body"].endswith("\n"), "health reply ends in newline")
        contains(hdr.get("content-type", ""), "application/json", "health content type")

        status, doc, _ = d.api("PUT", WEB1, GOOD)
        eq(status, 201, "first PUT creates")
        eq(set(doc), INSTANCE_KEYS, "instance JSON keys")
        eq((doc["service"], doc["id"], doc["addresses"], doc["port"], doc["proto"],
            doc["priority"], doc["weight"], doc["tags"], doc["meta"], doc["ttl"],
            doc["health"]),
           ("web", "web-1", ["127.0.0.10", "2001:db8::10"], 8080, "tcp", 0, 1, ["primary"],
            {"version": "1.4"}, 30, "passing"), "stored instance with defaults")
        check(0 < doc["lease_remaining_ms"] <= 30000, "lease_remaining_ms %r"
              % doc["lease_remaining_ms"])

        status, doc, _ = d.api("PUT", WEB1, dict(GOOD, port=8081))
        eq(status, 200, "second PUT replaces")
        eq(doc["port"], 8081, "replaced port")

        status, doc, _ = d.api("PUT", "/v1/services/WEB/instances/Web-2",
                               {"addresses": ["127.0.0.11"], "port": 80, "ttl": 100000,
                                "proto": "udp", "priority": 3, "weight": 4})
        eq(status, 201, "PUT web-2")
        eq((doc["service"], doc["id"]), ("web", "web-2"), "labels stored lower-cased")
        check(doc["ttl"] < 100000, "ttl clamped to lease max (%r)" % doc["ttl"])

        status, doc, _ = d.api("GET", "/v1/services")
        eq(status, 200, "GET /v1/services")
        eq(doc, {"services": [{"name": "web", "instances": 2}]}, "services list")
        d.put_instance("api", "api-1", addresses=["127.0.0.12"], port=81)
        status, doc, _ = d.api("GET", "/v1/services")
        eq(doc, {"services": [{"name": "api", "instances": 1}, {"name": "web", "instances": 2}]},
           "services list in name order")

        status, doc, _ = d.api("GET", "/v1/services/web")
        eq(status, 200, "GET /v1/services/web")
        eq(set(doc), {"service", "instances"}, "service reply keys")
        eq(doc["service"], "web", "service reply name")
        eq(sorted(i["id"] for i in doc["instances"]), ["web-1", "web-2"], "service instances")
        for inst in doc["instances"]:
            eq(set(inst), INSTANCE_KEYS, "instance keys in service listing")
        status, doc, _ = d.api("GET", "/v1/services/nothing")
        eq((status, doc), (200, {"service": "nothing", "instances": []}), "unknown service")

        status, doc, _ = d.api("GET", "/v1/health")
        eq(doc, {"status": "ok", "services": 2, "instances": 3}, "health counts")

        status, doc, _ = d.api("PUT", WEB1 + "/heartbeat", None)
        eq(status, 200, "heartbeat")
        eq(doc["id"], "web-1", "heartbeat reply is the instance")

        # A rejected request changes nothing.
        _, before, _ = d.api("GET", "/v1/services/web")
        _, svc_before, _ = d.api("GET", "/v1/services")
        bad = [
            ("PUT", WEB1, dict(GOOD, addresses=["127.0.0.300"]), 400, "addresses",
             "bad IPv4 address"),
            ("PUT", WEB1, dict(GOOD, addresses=["not-an-ip"]), 400, "addresses",
             "address that is no IP"),
            ("PUT", WEB1, dict(GOOD, addresses=[]), 400, "addresses", "no address"),
            ("PUT", WEB1, dict(GOOD, addresses=["127.0.0.1", "127.0.0.1"]), 400, "addresses",
             "duplicate address"),
            ("PUT", WEB1, dict(GOOD, port=0), 400, "port", "port 0"),
            ("PUT", WEB1, dict(GOOD, port=65536), 400, "port", "port 65536"),
            ("PUT", WEB1, dict(GOOD, port="80"), 400, "port", "port as a string"),
            ("PUT", WEB1, {"addresses": ["127.0.0.1"]}, 400, "port", "missing port"),
            ("PUT", WEB1, dict(GOOD, colour="blue"), 400, "colour", "unknown field"),
            ("PUT", WEB1, dict(GOOD, proto="sctp"), 400, "proto", "bad proto"),
            ("PUT", WEB1, dict(GOOD, tags=["_bad"]), 400, "tags", "bad tag"),
            ("PUT", WEB1, dict(GOOD, meta={"a=b": "c"}), 400, "meta", "meta key with ="),
            ("PUT", "/v1/services/bad_label/instances/x-1", GOOD, 400, "service",
             "bad service label in path"),
            ("PUT", "/v1/services/-web/instances/x-1", GOOD, 400, "service",
             "service label with leading hyphen"),
            ("PUT", "/v1/services/web/instances/_x", GOOD, 400, "id", "bad id label in path"),
            ("GET", "/v1/nothing", None, 404, None, "unknown path"),
            ("DELETE", "/v1/services/web/instances/nope", None, 404, "id", "unknown instance"),
            ("PUT", "/v1/services/web/instances/nope/heartbeat", None, 404, "id",
             "heartbeat of unknown instance"),
        ]
        for method, path, body, status, field, what in bad:
            expect_error(d, method, path, body, status, field, what)
        doc, _ = expect_error(d, "PUT", WEB1, None, 400, "body", "invalid JSON",
                              raw=b'{"addresses": ["127.0.0.1"], "port": 80')
        expect_error(d, "PUT", WEB1, None, 400, "body", "JSON that is not an object",
                     raw=b'[1, 2]')

        _, hdr = expect_error(d, "POST", "/v1/services", None, 405, None, "POST /v1/services")
        contains(hdr.get("allow", ""), "GET", "Allow header of /v1/services")
        _, hdr = expect_error(d, "GET", WEB1, None, 405, None, "GET on an instance path")
        check("PUT" in hdr.get("allow", "") and "DELETE" in hdr.get("allow", ""),
              "Allow header of an instance path: %r" % hdr.get("allow"))
        _, hdr = expect_error(d, "DELETE", "/v1/health", None, 405, None, "DELETE /v1/health")
        contains(hdr.get("allow", ""), "GET", "Allow header of /v1/health")

        big = dict(GOOD, meta={"k%d" % i: "v" * 40 for i in range(20)})
        expect_error(d, "PUT", WEB1, big, 413, "body", "body over api_options.max_body")

        _, after, _ = d.api("GET", "/v1/services/web")
        _, svc_after, _ = d.api("GET", "/v1/services")
        eq(stable(after), stable(before), "rejected requests changed no instance")
        eq(svc_after, svc_before, "rejected requests changed no service")
        rd = d.dig("web.service.internal.", "A")
        eq(sorted(rd.rdata("A")), ["127.0.0.10", "127.0.0.11"], "DNS unchanged too")

        status, doc, _ = d.api("DELETE", WEB1)
        eq((status, doc), (200, {"service": "web", "id": "web-1", "deregistered": True}),
           "DELETE reply")
        expect_error(d, "DELETE", WEB1, None, 404, "id", "second DELETE")


main(test)
