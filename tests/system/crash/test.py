#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# crash: with fsync "always", client threads register, re-register, deregister and
# heartbeat instances and record every change the API acknowledged (2xx); dnsd is killed
# with SIGKILL at a random moment; after a restart on the same data directory every
# acknowledged change is there, and an instance whose request was in flight at the kill
# shows either its last acknowledged state or the in-flight one, never anything else.
# Three rounds, seeded (the seed is printed; DNSD_CRASH_SEED repeats a run).

import http.client
import json
import os
import random
import shutil
import socket
import tempfile
import threading
import time

from dnsdtest import Dnsd, check, eq, main

THREADS = 4
KEYS = 25
ROUNDS = 3


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def call(conn, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def service(tid):
    return "crash%d" % tid


def worker(sock, tid, rng, acked, inflight, counts):
    """Drive the keys of thread tid until the connection dies. State of a key: None
    (not registered) or (port, note)."""
    conn = UnixHTTPConnection(sock)
    seq = 0
    svc = service(tid)
    try:
        while True:
            k = "k%d" % rng.randrange(KEYS)
            cur = acked.get((tid, k))
            seq += 1
            path = "/v1/services/%s/instances/%s" % (svc, k)
            op = "put" if cur is None else rng.choice(["put", "delete", "heartbeat"])
            if op == "put":
                want = (1000 + seq % 60000, None)
                inflight[(tid, k)] = want
                st = call(conn, "PUT", path, {"addresses": ["192.0.2.1"], "port": want[0],
                                              "ttl": 60})
            elif op == "delete":
                want = None
                inflight[(tid, k)] = want
                st = call(conn, "DELETE", path)
            else:
                want = (cur[0], "n%d" % seq)
                inflight[(tid, k)] = want
                st = call(conn, "PUT", path + "/heartbeat", {"note": want[1]})
            if st // 100 != 2:
                raise RuntimeError("%s %s -> %d" % (op, path, st))
            acked[(tid, k)] = want
            del inflight[(tid, k)]
            counts[tid] += 1
    except (OSError, http.client.HTTPException):
        pass  # dnsd was killed
    finally:
        conn.close()


def current_state(d):
    state = {}
    for tid in range(THREADS):
        st, doc, _ = d.api("GET", "/v1/services/" + service(tid))
        eq(st, 200, "list %s" % service(tid))
        for inst in doc["instances"]:
            state[(tid, inst["id"])] = (inst["port"], inst["note"])
    return state


def test():
    seed = int(os.environ.get("DNSD_CRASH_SEED") or random.randrange(1 << 30))
    print("crash: seed %d (set DNSD_CRASH_SEED to repeat)" % seed, flush=True)
    rng = random.Random(seed)
    data = tempfile.mkdtemp(prefix="dnsd-crash-")
    acked = {}
    try:
        for rnd in range(ROUNDS):
            d = Dnsd(args=["--data-dir", data])
            d.start()
            if rnd > 0:
                got = current_state(d)
                expected = {k: v for k, v in acked.items() if v is not None}
                eq(got, expected, "round %d starts from the verified state" % rnd)
            inflight = {}
            counts = [0] * THREADS
            threads = [threading.Thread(target=worker,
                                        args=(d.sock, t, random.Random(rng.random()), acked,
                                              inflight, counts))
                       for t in range(THREADS)]
            for t in threads:
                t.start()
            time.sleep(0.3 + rng.random() * 1.2)
            d.kill_if_running()  # SIGKILL
            for t in threads:
                t.join(timeout=15)
                check(not t.is_alive(), "client thread ended after the kill")
            check(sum(counts) > 0, "round %d acknowledged some changes" % rnd)

            d2 = Dnsd(args=["--data-dir", data])
            d2.start()
            got = current_state(d2)
            for key in set(acked) | set(inflight) | set(got):
                have = got.get(key)
                allowed = [acked.get(key)]
                if key in inflight:
                    allowed.append(inflight[key])
                check(have in allowed, "round %d: %s/%s is %r, acknowledged %r, in flight %r"
                      % (rnd, service(key[0]), key[1], have, acked.get(key),
                         inflight.get(key, "-")))
                acked[key] = have  # an in-flight change may have landed
            print("crash: round %d: %d acknowledged changes, %d in flight, all present"
                  % (rnd, sum(counts), len(inflight)), flush=True)
            d2.stop()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main(test)
