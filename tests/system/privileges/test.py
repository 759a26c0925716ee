# SPDX-License-Identifier: BSD-2-Clause
# privileges: started as root, dnsd drops to --user after binding (issue 6, "Privilege").
# A throwaway system user is created with useradd and removed with userdel at the end. As
# that user (all four Uid and Gid fields of /proc/PID/status, only its own groups) dnsd
# answers DNS, takes registrations, runs active checks, reloads zones, writes a snapshot,
# removes its socket and pid file on exit, and comes back with the registration after a
# restart (the data directory stays writable). A missing user or group is a start-up
# error with exit status 2 and a fix in the message; user "root" runs with a warning. A
# symbolic link planted as the pid file (where the user may write) is not followed by root.
# Needs root (CI runs as root): as anyone else it fails loudly rather than skip.

import os
import pwd
import shutil
import signal
import tempfile

import dnsdtest
from dnsdtest import (Dnsd, TcpListener, a_answer, check, contains, eq, instance_doc, main, run,
                      run_dnsd, wait_until, write_file)

USER = "dnsd-priv-%d" % (os.getpid() % 100000)
ZONE = """$ORIGIN example.internal.
$TTL 60
@    IN SOA ns.example.internal. hostmaster.example.internal. 1 3600 600 86400 60
@    IN NS  ns
ns   IN A   127.0.0.1
www  IN A   192.0.2.80
"""


def proc_ids(pid):
    """The Uid, Gid and Groups lines of /proc/PID/status, as lists of ints."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(x) for x in value.split()]
    return ids


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_drop(pw):
    d = Dnsd(zones={"example.internal.zone": ZONE})
    # The dropped user must reach its data directory, zones, socket and pid file.
    os.chown(d.tmp, pw.pw_uid, pw.pw_gid)
    os.chmod(d.tmp, 0o755)
    data = os.path.join(d.tmp, "data")
    d.extra += ["--user", USER, "--data-dir", data]
    d.start()

    ids = proc_ids(d.proc.pid)
    eq(ids["Uid"], [pw.pw_uid] * 4, "real, effective, saved and fs uid are the user's")
    eq(ids["Gid"], [pw.pw_gid] * 4, "real, effective, saved and fs gid are the user's group")
    eq(ids["Groups"], [pw.pw_gid], "supplementary groups: the user's (initgroups), not root's")
    contains(d.stderr_text(), "dropped root: running as user %s (uid %d), group %s (gid %d)"
             % (USER, pw.pw_uid, USER, pw.pw_gid), "the switch is logged")

    eq(owner(data), (pw.pw_uid, pw.pw_gid), "data directory given to the user")
    files = os.listdir(data)
    check(files, "the data directory has files")
    for name in files:
        eq(owner(os.path.join(data, name)), (pw.pw_uid, pw.pw_gid), "%s given to the user" % name)
    eq(owner(d.sock)[0], pw.pw_uid, "API socket owned by the user")
    eq(owner(d.pid_file), (pw.pw_uid, pw.pw_gid), "pid file given to the user")

    eq(d.dig("www.example.internal.", "A").rdata("A"), ["192.0.2.80"], "zone answered")
    d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--port", "8080",
                  "--ttl", "600")
    eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.10"]), "registration answered")

    # Active checks still probe after the drop.
    lst = TcpListener()
    try:
        d.must_regctl("register", "chk", "chk-1", "--addr", "127.0.0.1", "--port", str(lst.port),
                      "--ttl", "600", "--check-tcp", "127.0.0.1:%d" % lst.port,
                      "--check-interval", "300ms", "--check-timeout", "200ms")
        check(wait_until(lambda: (instance_doc(d, "chk", "chk-1") or {}).get("health")
                         == "passing", 5, 0.05),
              "TCP check passing as the user: %r" % instance_doc(d, "chk", "chk-1"))
    finally:
        lst.close()

    # A zone reload reads the zones directory as the user.
    write_file(os.path.join(d.zones_dir, "example.internal.zone"),
               ZONE.replace(" 1 3600", " 2 3600").replace("192.0.2.80", "192.0.2.81"))
    d.send_signal(signal.SIGHUP)
    check(wait_until(lambda: d.dig("www.example.internal.", "A").rdata("A") == ["192.0.2.81"],
                     5), "zone reloaded after SIGHUP as the user:\n%s" % d.stderr_text())

    # A snapshot creates, renames and removes files in the data directory as the user.
    out = d.must_regctl("snapshot")
    contains(out, "2 instances", "regctl snapshot as the user")
    _, doc, _ = d.api("GET", "/v1/health")
    check(not doc["persistence"].get("last_sync_error"), "no journal error: %r" % doc)
    for name in os.listdir(data):
        eq(owner(os.path.join(data, name))[0], pw.pw_uid, "%s (new) is the user's" % name)
    d.stop()  # also checks that the socket and the pid file were removed

    # The registration survives a restart: the journal was writable all along.
    d.start()
    eq(proc_ids(d.proc.pid)["Uid"], [pw.pw_uid] * 4, "still the user after the restart")
    eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.10"]), "registration restored after restart")
    d.must_regctl("register", "web", "web-2", "--addr", "127.0.0.11", "--port", "8080",
                  "--ttl", "600")
    d.stop()
    d.start()
    eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.10", "127.0.0.11"]),
       "a registration made after a restart is restored too")
    d.stop()


def test_missing_user_or_group():
    tmp = tempfile.mkdtemp(prefix="dnsd-systest-")
    try:
        missing_user_or_group(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def missing_user_or_group(tmp):
    sock = os.path.join(tmp, "api.sock")
    base = ["--listen", "127.0.0.1:0", "--api", "unix:" + sock, "--zones", tmp]
    rc, _, err = run_dnsd(["--user", "no-such-user-xyz"] + base)
    eq(rc, 2, "missing user: exit status 2 (configuration) (stderr %r)" % err)
    contains(err, 'user "no-such-user-xyz" does not exist', "missing user named")
    contains(err, "useradd --system --no-create-home --shell /usr/sbin/nologin no-such-user-xyz",
             "the message says how to create it")
    check(not os.path.exists(sock), "nothing was opened before the check")

    conf = os.path.join(tmp, "dnsd.conf")
    write_file(conf, 'user = "no-such-user-xyz";\n')
    rc, _, err = run_dnsd(["-c", conf, "--user", "no-such-user-xyz"] + base)
    eq(rc, 2, "missing user from the config file: exit status 2")

    rc, _, err = run_dnsd(["--user", USER, "--group", "no-such-group-xyz"] + base)
    eq(rc, 2, "missing group: exit status 2 (stderr %r)" % err)
    contains(err, 'group "no-such-group-xyz" does not exist', "missing group named")

    rc, _, err = run_dnsd(["--user", ""] + base)
    eq(rc, 2, "empty --user: exit status 2 (stderr %r)" % err)


def test_planted_links(pw):
    """The pid file and socket live where the dropped user may write: a symbolic link planted
    there by that user must not make root write to or chown another file."""
    d = Dnsd()
    os.chown(d.tmp, pw.pw_uid, pw.pw_gid)
    elsewhere = tempfile.mkdtemp(prefix="dnsd-victim-")
    victim = os.path.join(elsewhere, "victim")
    write_file(victim, "secret\n")
    os.chmod(victim, 0o600)
    os.symlink(victim, d.pid_file)
    os.lchown(d.pid_file, pw.pw_uid, pw.pw_gid)
    d.extra += ["--user", USER]
    try:
        d.start()
        contains(d.stderr_text(), "cannot write pid file", "the planted pid file is refused")
        d.proc.send_signal(signal.SIGTERM)
        eq(d.wait_exit(), 0, "dnsd exit status")
        with open(victim) as f:
            eq(f.read(), "secret\n", "the link's target was not written")
        eq(owner(victim), (0, 0), "the link's target still belongs to root")
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_root_on_request():
    d = Dnsd(args=["--user", "root"])
    d.start()
    eq(proc_ids(d.proc.pid)["Uid"], [0] * 4, "user root keeps root")
    contains(d.stderr_text(), "refuses to keep running as root unless told to explicitly",
             "warning for running as root")
    d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--port", "8080")
    eq(a_answer(d, "web"), ("NOERROR", ["127.0.0.10"]), "serving as root")
    d.stop()


def test():
    check(os.geteuid() == 0, "the privileges test needs root (CI runs as root): run it as root")
    rc, out, err = run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER])
    eq(rc, 0, "useradd %s (%s%s)" % (USER, out, err))
    try:
        pw = pwd.getpwnam(USER)
        test_drop(pw)
        test_missing_user_or_group()
        test_planted_links(pw)
        test_root_on_request()
    finally:
        # userdel refuses while a process of the user runs: stop a failed test's dnsd first.
        for srv in dnsdtest._servers:
            srv.kill_if_running()
        rc, out, err = run(["userdel", USER])
        if rc != 0:
            print("userdel %s failed (%d): %s%s" % (USER, rc, out, err), flush=True)


main(test)
