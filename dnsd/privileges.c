/* SPDX-License-Identifier: BSD-2-Clause
 * Dropping root: resolve the user and group (getpwnam_r, getgrnam_r), hand the files dnsd
 * created as root to them, and switch (initgroups, setgid, setuid) for good. Owns nothing
 * after it returns; never exits and never logs (main.c does both). */
#include "privileges.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsd/error.h"
#include "config.h"

/* Room for one user or group database entry; glibc needs far less for system users. */
#define ENTRY_BUF_LEN 16384

#define USERADD_HINT "useradd --system --no-create-home --shell /usr/sbin/nologin"

/* A decimal id below (uid_t)-1 (which means "no change" to setuid and chown). */
static bool parse_id(const char *s, unsigned long *out)
{
    if (s[0] < '0' || s[0] > '9' || strlen(s) > 10)
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v >= UINT32_MAX)
        return false;
    *out = v;
    return true;
}

/* getpwnam_r/getgrnam_r report "no such entry" as 0 or, from some NSS modules, as one of
 * these (getpwnam(3), NOTES). */
static bool is_not_found(int rc)
{
    return rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM;
}

/* Look up the user by name, then by number. Returns 0 (found or not: *found), DNSD_EIO. */
static int find_user(const char *user, struct privileges_plan *p, bool *found, char *buf, char *err,
                     size_t err_len)
{
    struct passwd pw, *res = NULL;
    unsigned long id;
    int rc = getpwnam_r(user, &pw, buf, ENTRY_BUF_LEN, &res);
    if (!res && is_not_found(rc) && parse_id(user, &id)) {
        p->uid = (uid_t)id;
        snprintf(p->user, sizeof(p->user), "%lu", id);
        *found = true;
        rc = getpwuid_r((uid_t)id, &pw, buf, ENTRY_BUF_LEN, &res);
    }
    if (!res && !is_not_found(rc)) {
        snprintf(err, err_len, "user \"%s\": cannot read the user database: %s", user,
                 strerror(rc));
        return DNSD_EIO;
    }
    if (res) {
        *found = true;
        p->has_entry = true;
        p->uid = res->pw_uid;
        p->gid = res->pw_gid;
        snprintf(p->user, sizeof(p->user), "%s", res->pw_name);
    }
    return 0;
}

int privileges_find_group(const char *group, gid_t *gid)
{
    struct group gr, *res = NULL;
    char buf[ENTRY_BUF_LEN];
    unsigned long id;
    int rc = getgrnam_r(group, &gr, buf, sizeof(buf), &res);
    if (res) {
        *gid = res->gr_gid;
        return 0;
    }
    if (!is_not_found(rc))
        return -rc;
    if (!parse_id(group, &id))
        return DNSD_ENOENT;
    *gid = (gid_t)id;
    return 0;
}

/* Resolve group (non-empty) into p->gid and p->group. */
static int find_group(const char *group, struct privileges_plan *p, char *err, size_t err_len)
{
    int rc = privileges_find_group(group, &p->gid);
    if (rc == DNSD_ENOENT) {
        snprintf(err, err_len,
                 "group \"%s\" does not exist: create it (groupadd --system %s), or set group "
                 "(config \"group\" or --group) to an existing group or \"\" for the user's "
                 "primary group",
                 group, group);
        return DNSD_EINVAL;
    }
    if (rc != 0) {
        snprintf(err, err_len, "group \"%s\": cannot read the group database: %s", group,
                 strerror(-rc));
        return DNSD_EIO;
    }
    snprintf(p->group, sizeof(p->group), "%s", group);
    return 0;
}

/* The name of gid for logs, or its number. */
static void name_group(struct privileges_plan *p, char *buf)
{
    struct group gr, *res = NULL;
    if (getgrgid_r(p->gid, &gr, buf, ENTRY_BUF_LEN, &res) == 0 && res)
        snprintf(p->group, sizeof(p->group), "%s", res->gr_name);
    else
        snprintf(p->group, sizeof(p->group), "%lu", (unsigned long)p->gid);
}

int privileges_plan(const char *user, const char *group, uid_t euid, struct privileges_plan *out,
                    char *err, size_t err_len)
{
    struct privileges_plan p;
    memset(&p, 0, sizeof(p));
    if (user == NULL || user[0] == '\0') {
        snprintf(err, err_len,
                 "user: must not be empty: name the unprivileged user dnsd runs as after "
                 "binding (\"root\" keeps running as root)");
        return DNSD_EINVAL;
    }
    if (group == NULL)
        group = "";
    snprintf(p.user, sizeof(p.user), "%s", user);
    snprintf(p.group, sizeof(p.group), "%s", group);
    if (euid != 0) {
        *out = p;
        return 0;
    }
    p.was_root = true;
    char *buf = malloc(ENTRY_BUF_LEN);
    if (!buf) {
        snprintf(err, err_len, "out of memory");
        return DNSD_ENOMEM;
    }
    bool found = false;
    int rc = find_user(user, &p, &found, buf, err, err_len);
    if (rc != 0)
        goto done;
    if (!found) {
        snprintf(err, err_len,
                 "user \"%s\" does not exist: dnsd started as root drops to it after binding; "
                 "create it (%s %s) or set user (config \"user\" or --user) to an existing "
                 "unprivileged user (user = \"root\" keeps running as root)",
                 user, USERADD_HINT, user);
        rc = DNSD_EINVAL;
        goto done;
    }
    if (p.uid == 0) {
        p.keep_root = true;
        rc = 0;
        goto done;
    }
    if (group[0]) {
        rc = find_group(group, &p, err, err_len);
    } else if (!p.has_entry) {
        snprintf(err, err_len,
                 "user %s has no entry in the user database, so no primary group: set group "
                 "(config \"group\" or --group)",
                 p.user);
        rc = DNSD_EINVAL;
    } else {
        name_group(&p, buf);
    }
    p.drop = rc == 0;
done:
    free(buf);
    if (rc == 0)
        *out = p;
    return rc;
}

int privileges_make_dir(const struct privileges_plan *plan, const char *dir, unsigned mode,
                        char *err, size_t err_len)
{
    char buf[4096];
    if (dir[0] == '\0') {
        snprintf(err, err_len, "empty directory name");
        return DNSD_EINVAL;
    }
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf)) {
        snprintf(err, err_len, "%s: path too long", dir);
        return -ENAMETOOLONG;
    }
    /* "dir/" is "dir": its last component must get mode, not the parents' 0755. */
    for (size_t n = strlen(buf); n > 1 && buf[n - 1] == '/'; n--)
        buf[n - 1] = '\0';
    for (char *p = buf + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(buf, last ? (mode_t)mode : 0755) == 0) {
            /* mkdir's mode is filtered by the umask; the directory gets exactly mode. */
            if (last && chmod(buf, (mode_t)mode) != 0)
                goto fail;
            if (last && plan->drop && chown(buf, plan->uid, plan->gid) != 0)
                goto fail;
        } else if (errno != EEXIST) {
            goto fail;
        }
        if (last)
            return 0;
        *p = '/';
    }
fail:;
    int rc = -errno;
    snprintf(err, err_len, "cannot create directory %s: %s", buf, strerror(errno));
    return rc;
}

int privileges_chown(const struct privileges_plan *plan, const char *path, unsigned flags,
                     char *err, size_t err_len)
{
    if (!plan->drop)
        return 0;
    gid_t gid = flags & PRIVILEGES_KEEP_GROUP ? (gid_t)-1 : plan->gid;
    /* A data_dir may be a link to another disk; entries and NOFOLLOW paths are not. */
    int at = flags & PRIVILEGES_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0;
    if (fchownat(AT_FDCWD, path, plan->uid, gid, at) != 0) {
        int rc = -errno;
        snprintf(err, err_len, "cannot give %s to user %s: %s", path, plan->user, strerror(errno));
        return rc;
    }
    if (!(flags & PRIVILEGES_ENTRIES))
        return 0;
    DIR *d = opendir(path);
    if (!d) {
        int rc = -errno;
        snprintf(err, err_len, "cannot read directory %s: %s", path, strerror(errno));
        return rc;
    }
    int rc = 0;
    struct dirent *ent;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (fchownat(dirfd(d), ent->d_name, plan->uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = -errno;
            snprintf(err, err_len, "cannot give %s/%s to user %s: %s", path, ent->d_name,
                     plan->user, strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

int privileges_drop(const struct privileges_plan *plan, char *err, size_t err_len)
{
    if (!plan->drop)
        return 0;
    const char *step;
    /* Groups first: once the uid is not 0, setgroups and setgid are no longer allowed. */
    if (plan->has_entry) {
        step = "initgroups";
        if (initgroups(plan->user, plan->gid) != 0)
            goto fail;
    } else {
        step = "setgroups";
        if (setgroups(0, NULL) != 0)
            goto fail;
    }
    step = "setgid";
    if (setgid(plan->gid) != 0)
        goto fail;
    step = "setuid";
    if (setuid(plan->uid) != 0)
        goto fail;

    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) {
        step = "getresuid";
        goto fail;
    }
    if (ru != plan->uid || eu != plan->uid || su != plan->uid || rg != plan->gid ||
        eg != plan->gid || sg != plan->gid) {
        snprintf(err, err_len, "after dropping to %s:%s, ids are uid %lu/%lu/%lu gid %lu/%lu/%lu",
                 plan->user, plan->group, (unsigned long)ru, (unsigned long)eu, (unsigned long)su,
                 (unsigned long)rg, (unsigned long)eg, (unsigned long)sg);
        return DNSD_EIO;
    }
    if (setuid(0) == 0 || setgid(0) == 0) {
        snprintf(err, err_len, "after dropping to %s:%s, root privileges could be regained",
                 plan->user, plan->group);
        return DNSD_EIO;
    }
    return 0;
fail:;
    int rc = -errno;
    snprintf(err, err_len, "cannot drop privileges to user %s group %s: %s: %s", plan->user,
             plan->group, step, strerror(errno));
    return rc;
}

/* The directory part of a socket path into dir; false when there is none ("x" or "/x"). */
static bool parent_dir(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return false;
    *slash = '\0';
    return true;
}

int privileges_prepare(const struct privileges_plan *plan, const struct dnsd_config *cfg, char *err,
                       size_t err_len)
{
    if (!plan->drop)
        return 0;
    int rc;
    /* persist.c would create it as root, mode 0750: the user could not write it. */
    if (cfg->data_dir[0] && (rc = privileges_make_dir(plan, cfg->data_dir, 0750, err, err_len)))
        return rc;
    for (size_t i = 0; i < cfg->n_api; i++) {
        char dir[sizeof(cfg->api[i].path)];
        if (cfg->api[i].kind != CONFIG_API_UNIX || !parent_dir(cfg->api[i].path, dir, sizeof(dir)))
            continue;
        /* A directory dnsd makes for its socket is its own, so it can remove the socket. */
        if ((rc = privileges_make_dir(plan, dir, 0755, err, err_len)) != 0)
            return rc;
    }
    return 0;
}

int privileges_apply(const struct privileges_plan *plan, const struct dnsd_config *cfg, char *err,
                     size_t err_len)
{
    if (!plan->drop)
        return 0;
    int rc;
    /* New journal and snapshot files are created, renamed and removed there later. */
    if (cfg->data_dir[0] &&
        (rc = privileges_chown(plan, cfg->data_dir, PRIVILEGES_ENTRIES, err, err_len)) != 0)
        return rc;
    if (cfg->pid_file[0] && access(cfg->pid_file, F_OK) == 0 &&
        (rc = privileges_chown(plan, cfg->pid_file, PRIVILEGES_NOFOLLOW, err, err_len)) != 0)
        return rc;
    for (size_t i = 0; i < cfg->n_api; i++) {
        if (cfg->api[i].kind != CONFIG_API_UNIX)
            continue;
        /* socket_group "" means the process's group, which is now the plan's. */
        unsigned flags =
            PRIVILEGES_NOFOLLOW | (cfg->api_socket_group[0] ? PRIVILEGES_KEEP_GROUP : 0);
        if ((rc = privileges_chown(plan, cfg->api[i].path, flags, err, err_len)) != 0)
            return rc;
    }
    if ((rc = privileges_drop(plan, err, err_len)) != 0)
        return rc;
    if (cfg->data_dir[0] && access(cfg->data_dir, R_OK | W_OK | X_OK) != 0) {
        rc = -errno;
        snprintf(err, err_len,
                 "data directory %s is not usable by user %s after dropping root (%s): every "
                 "directory above it must be searchable (x) by that user",
                 cfg->data_dir, plan->user, strerror(errno));
        return rc;
    }
    return 0;
}
