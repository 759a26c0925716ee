#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# glibc: getent (glibc's stub resolver, through nsswitch "dns") finds registered services
# through dnsd on port 53, with `search service.internal` for short names. The scenario,
# inner.py, runs in a new network and mount namespace (unshare --net --mount) with its own
# /etc/resolv.conf bind-mounted; this script checks that nothing of it leaks out: the host's
# /etc/resolv.conf and mount table are unchanged and dnsd is gone.

import hashlib
import os
import re
import subprocess

from dnsdtest import CheckFailed, check, eq, main

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 120


def fingerprint():
    with open("/etc/resolv.conf", "rb") as f:
        text = hashlib.sha256(f.read()).hexdigest()
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    return text, mounts


def test():
    check(os.geteuid() == 0, "the glibc test needs root (unshare --net --mount, port 53)")
    before = fingerprint()
    host_netns = os.readlink("/proc/self/ns/net")
    argv = ["unshare", "--net", "--mount", "--", "/usr/bin/python3",
            os.path.join(HERE, "inner.py"), host_netns]
    try:
        p = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise CheckFailed("inner scenario still running after %d s:\n%s" % (TIMEOUT_S, e.stdout))
    out = p.stdout.decode("utf-8", "replace")
    print(out + p.stderr.decode("utf-8", "replace"), end="", flush=True)
    eq(p.returncode, 0, "inner scenario in the namespaces")
    m = re.search(r"^glibc: (\d+) passed, 0 failed", out, re.M)
    check(m is not None and int(m.group(1)) >= 20, "inner scenario ran its checks")

    eq(fingerprint(), before, "host /etc/resolv.conf and mount points unchanged")
    eq(os.readlink("/proc/self/ns/net"), host_netns, "still in the host network namespace")
    pid = int(out.split("inner: dnsd pid ")[1].split()[0])
    check(not os.path.exists("/proc/%d" % pid), "dnsd (pid %d) is gone" % pid)


main(test)
