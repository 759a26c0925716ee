/* SPDX-License-Identifier: BSD-2-Clause
 * Dropping root. Started as root (to bind port 53), dnsd resolves the configured user and
 * group into a plan before anything opens, binds and opens everything, hands what it
 * created as root (data directory, pid file, API socket files) to that user, then switches:
 * supplementary groups, setgid, setuid, in that order, and proves root cannot come back.
 * Never exits: main.c decides what a failure means. Loop: main thread, before the loop runs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct dnsd_config;

#define PRIVILEGES_NAME_LEN 64

/* privileges_chown flags. */
#define PRIVILEGES_KEEP_GROUP 1u /* change the owner only */
#define PRIVILEGES_ENTRIES 2u    /* also every entry directly inside the directory */
#define PRIVILEGES_NOFOLLOW 4u   /* path itself is never followed if it is a symbolic link */

/* Who dnsd runs as once it serves. */
struct privileges_plan {
    bool drop;      /* started as root and user is not root: switch before serving */
    bool keep_root; /* started as root and user is root (uid 0): stay, with a warning */
    bool was_root;  /* the effective uid at planning was 0 */
    uid_t uid;
    gid_t gid;
    bool has_entry;                  /* user is in the user database: initgroups() gives its
                                        supplementary groups; otherwise it gets none */
    char user[PRIVILEGES_NAME_LEN];  /* the user's name, or its number without an entry */
    char group[PRIVILEGES_NAME_LEN]; /* the group's name, or its number without an entry */
};

/* Resolve user (a name or a numeric uid) and group (a name, a numeric gid, or "" for the
 * user's primary group) for a process whose effective uid is euid. A name is looked up
 * before a number. Not root (euid != 0): nothing is looked up and the plan drops nothing.
 * Returns: 0 and *out; DNSD_EINVAL with err saying how to fix it (empty user, unknown user
 * or group, a numeric uid without a user database entry and no group); DNSD_EIO (the user or
 * group database could not be read). */
int privileges_plan(const char *user, const char *group, uid_t euid, struct privileges_plan *out,
                    char *err, size_t err_len);

/* Find a group by name or, when no group has that name, as a decimal gid (a gid need not
 * have an entry in the group database).
 * Returns: 0 and *gid; DNSD_ENOENT (no such group); -errno (the database cannot be read). */
int privileges_find_group(const char *group, gid_t *gid);

/* Create dir and its missing parents (parents mode 0755, dir itself mode) and, when the
 * plan drops, give dir to the plan's user and group if it was created here.
 * Returns: 0 (also when dir exists already), -errno with err naming the path. */
int privileges_make_dir(const struct privileges_plan *plan, const char *dir, unsigned mode,
                        char *err, size_t err_len);

/* Give path (followed if a symbolic link unless PRIVILEGES_NOFOLLOW; entries inside it never
 * are) to the plan's user and group, as flags say (PRIVILEGES_KEEP_GROUP, PRIVILEGES_ENTRIES,
 * PRIVILEGES_NOFOLLOW: for paths in a directory the user may write, where a link planted
 * there must not make root chown another file). Does nothing unless the plan drops.
 * Returns: 0, -errno with err naming the path. */
int privileges_chown(const struct privileges_plan *plan, const char *path, unsigned flags,
                     char *err, size_t err_len);

/* Switch to the plan's user and group: initgroups (or no supplementary groups), setgid,
 * setuid; then check that the real, effective and saved ids are the plan's and that
 * setuid(0) and setgid(0) fail. Does nothing unless the plan drops.
 * Returns: 0, -errno (DNSD_EIO when root could be regained) with err naming the step; the
 * process must not go on serving after a failure. */
int privileges_drop(const struct privileges_plan *plan, char *err, size_t err_len);

/* Before daemon_start: create the data directory (mode 0750) and the API sockets' missing
 * directories (mode 0755) for the plan's user, so what dnsd creates there stays its own.
 * Returns: 0, -errno with err naming the path. */
int privileges_prepare(const struct privileges_plan *plan, const struct dnsd_config *cfg, char *err,
                       size_t err_len);

/* After daemon_start and the pid file: give the data directory and its files, the pid file
 * and the Unix API sockets (their group too unless api_options.socket_group names one) to
 * the plan's user, drop privileges, and check the data directory is still writable.
 * Returns: 0, -errno or DNSD_EIO with err saying what failed and how to fix it. */
int privileges_apply(const struct privileges_plan *plan, const struct dnsd_config *cfg, char *err,
                     size_t err_len);
