/* SPDX-License-Identifier: BSD-2-Clause
 * privileges: resolving user and group names and numbers into a plan, the error messages
 * that say how to fix a missing account, and (as root, which CI is) handing files over and
 * dropping for good. Expected ids come from the system's own user database. */
#include <criterion/criterion.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsd/error.h"
#include "config.h"
#include "privileges.h"

/* Debian's base-passwd always has user and group "daemon" (uid 1) and group "adm". */
#define SOME_USER "daemon"
#define SOME_GROUP "adm"

static char err[512];

/* A uid with no user database entry. */
static uid_t unused_uid(void)
{
    for (uid_t u = 61000; u < 62000; u++) {
        if (getpwuid(u) == NULL)
            return u;
    }
    cr_assert_fail("no free uid in 61000..61999");
    return 0;
}

Test(privileges, not_root_looks_nothing_up)
{
    struct privileges_plan p;
    cr_assert_eq(
        privileges_plan("no-such-user-xyz", "no-such-group-xyz", 1000, &p, err, sizeof(err)), 0);
    cr_assert_not(p.drop);
    cr_assert_not(p.keep_root);
    cr_assert_not(p.was_root);
}

Test(privileges, root_user_keeps_root)
{
    struct privileges_plan p;
    cr_assert_eq(privileges_plan("root", "", 0, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(p.keep_root);
    cr_assert_not(p.drop);
    cr_assert(p.was_root);
}

Test(privileges, uid_zero_keeps_root)
{
    struct privileges_plan p;
    cr_assert_eq(privileges_plan("0", "", 0, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(p.keep_root);
    cr_assert_not(p.drop);
}

Test(privileges, user_name_gives_uid_and_primary_group)
{
    struct passwd *pw = getpwnam(SOME_USER);
    cr_assert_not_null(pw, "the system has no user " SOME_USER);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    struct group *gr = getgrgid(gid);
    cr_assert_not_null(gr);
    char gname[64];
    snprintf(gname, sizeof(gname), "%s", gr->gr_name);

    struct privileges_plan p;
    cr_assert_eq(privileges_plan(SOME_USER, "", 0, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(p.drop);
    cr_assert_not(p.keep_root);
    cr_assert(p.has_entry);
    cr_assert_eq(p.uid, uid);
    cr_assert_eq(p.gid, gid);
    cr_assert_str_eq(p.user, SOME_USER);
    cr_assert_str_eq(p.group, gname);
}

Test(privileges, numeric_uid_finds_its_entry)
{
    struct passwd *pw = getpwnam(SOME_USER);
    cr_assert_not_null(pw);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char num[32];
    snprintf(num, sizeof(num), "%lu", (unsigned long)uid);

    struct privileges_plan p;
    cr_assert_eq(privileges_plan(num, "", 0, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(p.drop);
    cr_assert(p.has_entry);
    cr_assert_eq(p.uid, uid);
    cr_assert_eq(p.gid, gid);
    cr_assert_str_eq(p.user, SOME_USER);
}

Test(privileges, group_name_overrides_primary_group)
{
    struct group *gr = getgrnam(SOME_GROUP);
    cr_assert_not_null(gr, "the system has no group " SOME_GROUP);
    gid_t gid = gr->gr_gid;
    struct privileges_plan p;
    cr_assert_eq(privileges_plan(SOME_USER, SOME_GROUP, 0, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.gid, gid);
    cr_assert_str_eq(p.group, SOME_GROUP);
}

Test(privileges, numeric_uid_without_entry_needs_a_group)
{
    char num[32];
    snprintf(num, sizeof(num), "%lu", (unsigned long)unused_uid());
    struct privileges_plan p;
    cr_assert_eq(privileges_plan(num, "", 0, &p, err, sizeof(err)), DNSD_EINVAL);
    cr_assert(strstr(err, "no primary group") != NULL, "%s", err);
    cr_assert(strstr(err, "--group") != NULL, "%s", err);
}

Test(privileges, numeric_uid_and_gid_without_entries)
{
    uid_t uid = unused_uid();
    char num[32];
    snprintf(num, sizeof(num), "%lu", (unsigned long)uid);
    struct privileges_plan p;
    cr_assert_eq(privileges_plan(num, "61999", 0, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert(p.drop);
    cr_assert_not(p.has_entry);
    cr_assert_eq(p.uid, uid);
    cr_assert_eq(p.gid, (gid_t)61999);
    cr_assert_str_eq(p.user, num);
}

Test(privileges, missing_user_says_how_to_create_it)
{
    struct privileges_plan p = {.uid = 4242};
    cr_assert_eq(privileges_plan("no-such-user-xyz", "", 0, &p, err, sizeof(err)), DNSD_EINVAL);
    cr_assert_eq(p.uid, 4242, "out-parameter written on failure");
    cr_assert(strstr(err, "user \"no-such-user-xyz\" does not exist") != NULL, "%s", err);
    cr_assert(strstr(err, "useradd --system --no-create-home --shell /usr/sbin/nologin "
                          "no-such-user-xyz") != NULL,
              "%s", err);
    cr_assert(strstr(err, "user = \"root\"") != NULL, "%s", err);
}

Test(privileges, missing_group_says_how_to_fix_it)
{
    struct privileges_plan p;
    cr_assert_eq(privileges_plan(SOME_USER, "no-such-group-xyz", 0, &p, err, sizeof(err)),
                 DNSD_EINVAL);
    cr_assert(strstr(err, "group \"no-such-group-xyz\" does not exist") != NULL, "%s", err);
    cr_assert(strstr(err, "groupadd --system no-such-group-xyz") != NULL, "%s", err);
}

Test(privileges, digits_and_letters_are_a_name)
{
    struct privileges_plan p;
    cr_assert_eq(privileges_plan("12abc", "", 0, &p, err, sizeof(err)), DNSD_EINVAL);
    cr_assert(strstr(err, "user \"12abc\" does not exist") != NULL, "%s", err);
}

Test(privileges, empty_user_is_refused)
{
    struct privileges_plan p;
    cr_assert_eq(privileges_plan("", "", 0, &p, err, sizeof(err)), DNSD_EINVAL);
    cr_assert(strstr(err, "user: must not be empty") != NULL, "%s", err);
    cr_assert_eq(privileges_plan("", "", 1000, &p, err, sizeof(err)), DNSD_EINVAL);
}

Test(privileges, without_drop_nothing_changes)
{
    struct privileges_plan p;
    cr_assert_eq(privileges_plan("root", "", 0, &p, err, sizeof(err)), 0);
    uid_t before = geteuid();
    cr_assert_eq(privileges_drop(&p, err, sizeof(err)), 0);
    cr_assert_eq(geteuid(), before);
    /* No chown is tried, so a path that does not exist is no error. */
    cr_assert_eq(privileges_chown(&p, "/nonexistent/path", 0, err, sizeof(err)), 0);
}

Test(privileges, make_dir_creates_missing_parents_with_mode)
{
    char base[] = "/tmp/test_privileges.XXXXXX";
    cr_assert_not_null(mkdtemp(base));
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/a/b/data", base);
    struct privileges_plan p = {0};
    cr_assert_eq(privileges_make_dir(&p, dir, 0750, err, sizeof(err)), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0750);
    char mid[128];
    snprintf(mid, sizeof(mid), "%s/a/b", base);
    cr_assert_eq(stat(mid, &st), 0);
    cr_assert_eq(st.st_mode & 0555, 0555, "parents are searchable");
    cr_assert_eq(privileges_make_dir(&p, dir, 0750, err, sizeof(err)), 0, "exists: fine");

    snprintf(dir, sizeof(dir), "%s/slash//", base);
    cr_assert_eq(privileges_make_dir(&p, dir, 0750, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0750, "a trailing slash still gets the mode");

    char file[160];
    snprintf(file, sizeof(file), "%s/a/file", base);
    FILE *fp = fopen(file, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    snprintf(dir, sizeof(dir), "%s/a/file/x", base);
    cr_assert_lt(privileges_make_dir(&p, dir, 0750, err, sizeof(err)), 0);
    cr_assert(strstr(err, "cannot create directory") != NULL, "%s", err);

    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    cr_assert_eq(system(cmd), 0);
}

/* Criterion runs every test in its own process, so dropping here leaves the others root. */
Test(privileges, root_hands_over_files_and_drops_for_good)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (CI runs as root); the system test covers it too");
    struct privileges_plan p;
    cr_assert_eq(privileges_plan(SOME_USER, "", 0, &p, err, sizeof(err)), 0, "%s", err);

    char base[] = "/tmp/test_privileges.XXXXXX";
    cr_assert_not_null(mkdtemp(base));
    cr_assert_eq(chmod(base, 0755), 0);
    char file[128];
    snprintf(file, sizeof(file), "%s/journal-1", base);
    FILE *fp = fopen(file, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    cr_assert_eq(privileges_chown(&p, base, PRIVILEGES_ENTRIES, err, sizeof(err)), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(file, &st), 0);
    cr_assert_eq(st.st_uid, p.uid);
    cr_assert_eq(st.st_gid, p.gid);
    cr_assert_eq(stat(base, &st), 0);
    cr_assert_eq(st.st_uid, p.uid);

    cr_assert_eq(privileges_drop(&p, err, sizeof(err)), 0, "%s", err);
    uid_t r, e, s;
    cr_assert_eq(getresuid(&r, &e, &s), 0);
    cr_assert_eq(r, p.uid);
    cr_assert_eq(e, p.uid);
    cr_assert_eq(s, p.uid);
    cr_assert_eq(getegid(), p.gid);
    cr_assert_neq(setuid(0), 0, "root regained");
    /* The handed-over directory is still writable: a new file can be made and removed. */
    snprintf(file, sizeof(file), "%s/journal-2", base);
    fp = fopen(file, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    cr_assert_eq(unlink(file), 0);
    snprintf(file, sizeof(file), "%s/journal-1", base);
    cr_assert_eq(unlink(file), 0);
    cr_assert_eq(rmdir(base), 0);
}

Test(privileges, chown_failure_names_the_path)
{
    struct privileges_plan p = {.drop = true, .uid = 1, .gid = 1, .user = "daemon"};
    cr_assert_eq(privileges_chown(&p, "/nonexistent/dnsd-data", 0, err, sizeof(err)), -ENOENT);
    cr_assert(strstr(err, "cannot give /nonexistent/dnsd-data to user daemon") != NULL, "%s", err);
}

/* prepare makes the data directory and the socket directory the user's; apply hands over
 * the pid file and the socket, drops, and refuses a data directory the user cannot reach. */
Test(privileges, prepare_and_apply_hand_over_what_dnsd_made)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (CI runs as root); the system test covers it too");
    struct privileges_plan p;
    cr_assert_eq(privileges_plan(SOME_USER, "", 0, &p, err, sizeof(err)), 0, "%s", err);
    char base[] = "/tmp/test_privileges.XXXXXX";
    cr_assert_not_null(mkdtemp(base));
    cr_assert_eq(chmod(base, 0700), 0, "root only: the user cannot reach inside");

    static struct dnsd_config cfg;
    config_init_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s/lib/dnsd", base);
    snprintf(cfg.pid_file, sizeof(cfg.pid_file), "%s/dnsd.pid", base);
    snprintf(cfg.api[0].path, sizeof(cfg.api[0].path), "%s/run/api.sock", base);
    cr_assert_eq(privileges_prepare(&p, &cfg, err, sizeof(err)), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(cfg.data_dir, &st), 0);
    cr_assert_eq(st.st_uid, p.uid);
    cr_assert_eq(st.st_mode & 07777, 0750);
    char run[128];
    snprintf(run, sizeof(run), "%s/run", base);
    cr_assert_eq(stat(run, &st), 0);
    cr_assert_eq(st.st_uid, p.uid, "the socket directory dnsd made is the user's");

    FILE *fp = fopen(cfg.pid_file, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    fp = fopen(cfg.api[0].path, "w"); /* stands in for the socket file */
    cr_assert_not_null(fp);
    fclose(fp);
    /* The drop happens in a child, so this process can still check and clean up. */
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int rc = privileges_apply(&p, &cfg, err, sizeof(err));
        bool ok = rc == -EACCES && strstr(err, "is not usable by user " SOME_USER) != NULL &&
                  geteuid() == p.uid && getegid() == p.gid;
        if (!ok)
            fprintf(stderr, "privileges_apply: %d %s (euid %lu)\n", rc, err,
                    (unsigned long)geteuid());
        _exit(ok ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "apply dropped, then refused the unreachable data directory");
    cr_assert_eq(stat(cfg.pid_file, &st), 0);
    cr_assert_eq(st.st_uid, p.uid, "pid file handed over");
    cr_assert_eq(st.st_gid, p.gid);
    cr_assert_eq(stat(cfg.api[0].path, &st), 0);
    cr_assert_eq(st.st_uid, p.uid, "socket file handed over");
    cr_assert_eq(st.st_gid, p.gid, "socket_group \"\": the process's (new) group");

    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    cr_assert_eq(system(cmd), 0);
}

Test(privileges, find_group_by_name_or_number)
{
    gid_t gid = 1;
    cr_assert_eq(privileges_find_group("root", &gid), 0);
    cr_assert_eq(gid, 0);
    cr_assert_eq(privileges_find_group("54321", &gid), 0, "a gid needs no entry");
    cr_assert_eq(gid, 54321);
    cr_assert_eq(privileges_find_group("no-such-group-dnsd", &gid), DNSD_ENOENT);
    cr_assert_eq(privileges_find_group("99999999999", &gid), DNSD_ENOENT, "too large a gid");
}
