/* SPDX-License-Identifier: BSD-2-Clause
 * dnsd's entry point: command line, configuration, signals, the pid file, the loop, and
 * systemd's readiness protocol (sd_notify; a no-op when NOTIFY_SOCKET is unset).
 * Exit codes: 0 clean shutdown, 1 runtime failure (e.g. a port in use, a data directory
 * locked by another dnsd), 2 bad usage, configuration or zone file (or, started as root, a
 * user or group that does not exist), 3 a damaged journal or
 * snapshot in the data directory. Only this file may exit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <urcu/urcu-memb.h>
#include <uv.h>

#include "dnsd/error.h"
#include "dnsd/names.h"
#include "dnsd/version.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "privileges.h"

enum {
    EXIT_RUNTIME = 1,
    EXIT_CONFIG = 2,
    EXIT_DATA = 3,
};

enum {
    OPT_LISTEN = 256,
    OPT_API,
    OPT_DOMAIN,
    OPT_ZONES,
    OPT_LOG_LEVEL,
    OPT_PID_FILE,
    OPT_VERSION,
    OPT_DATA_DIR,
    OPT_REPAIR_JOURNAL,
    OPT_USER,
    OPT_GROUP,
};

struct signals {
    uv_signal_t term, intr, hup;
    struct daemon *daemon; /* borrowed; NULL once stopping */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dnsd [-c FILE] [--listen ADDR:PORT]... [--api unix:PATH|tcp:ADDR:PORT]...\n"
            "            [--domain NAME] [--zones DIR] [--log-level LEVEL] [--pid-file FILE]\n"
            "            [--data-dir DIR] [--repair-journal] [--user USER] [--group GROUP]\n"
            "            [--version] [--help]\n"
            "\n"
            "DNS-based service discovery: an authoritative DNS server for the services\n"
            "registered through its HTTP/JSON API.\n"
            "\n"
            "  -c, --config FILE    read a libconfig file (see dnsd.conf.sample)\n"
            "  --listen ADDR:PORT   DNS address, UDP and TCP; IPv6 as [ADDR]:PORT; repeatable\n"
            "                       (default 127.0.0.1:%d and [::1]:%d)\n"
            "  --api ENDPOINT       registration API, unix:PATH or tcp:ADDR:PORT; repeatable\n"
            "                       (default unix:%s)\n"
            "  --domain NAME        service domain (default %s)\n"
            "  --zones DIR          directory of *.zone files (default /etc/dnsd/zones)\n"
            "  --log-level LEVEL    error, warn, info or debug (default info)\n"
            "  --pid-file FILE      write the process id to FILE while running\n"
            "  --data-dir DIR       keep the registry in DIR across restarts (journal and\n"
            "                       snapshots); default: none, in memory only\n"
            "  --repair-journal     start even if a journal is damaged mid-file: keep its\n"
            "                       valid records and move the damaged file aside\n"
            "  --user USER          started as root: the user to run as after binding, a\n"
            "                       name or uid (default dnsd; root keeps root, with a warning)\n"
            "  --group GROUP        started as root: the group to run as (default: the user's\n"
            "                       primary group)\n"
            "  --version            print the version and exit\n"
            "  -h, --help           print this help and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT shut down cleanly, SIGHUP reloads the zone files.\n",
            DNSD_DEFAULT_DNS_PORT, DNSD_DEFAULT_DNS_PORT, DNSD_DEFAULT_API_SOCKET,
            DNSD_DEFAULT_DOMAIN);
}

/* Command-line flags win over the file: collect them, then apply after loading it. */
struct flags {
    const char *config_file;
    struct config_listen listen[CONFIG_MAX_LISTEN];
    size_t n_listen;
    struct config_api api[CONFIG_MAX_API];
    size_t n_api;
    const char *domain;
    const char *zones;
    const char *log_level;
    const char *pid_file;
    const char *data_dir;
    bool repair_journal;
    const char *user;
    const char *group;
};

static int parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"api", required_argument, NULL, OPT_API},
        {"domain", required_argument, NULL, OPT_DOMAIN},
        {"zones", required_argument, NULL, OPT_ZONES},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"pid-file", required_argument, NULL, OPT_PID_FILE},
        {"version", no_argument, NULL, OPT_VERSION},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"repair-journal", no_argument, NULL, OPT_REPAIR_JOURNAL},
        {"user", required_argument, NULL, OPT_USER},
        {"group", required_argument, NULL, OPT_GROUP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            f->config_file = optarg;
            break;
        case OPT_LISTEN:
            if (f->n_listen == CONFIG_MAX_LISTEN) {
                fprintf(stderr, "dnsd: at most %d --listen addresses\n", CONFIG_MAX_LISTEN);
                return EXIT_CONFIG;
            }
            if (config_parse_listen(optarg, &f->listen[f->n_listen++]) != 0) {
                fprintf(stderr, "dnsd: --listen %s: expected ADDR:PORT or [ADDR]:PORT\n", optarg);
                return EXIT_CONFIG;
            }
            break;
        case OPT_API:
            if (f->n_api == CONFIG_MAX_API) {
                fprintf(stderr, "dnsd: at most %d --api endpoints\n", CONFIG_MAX_API);
                return EXIT_CONFIG;
            }
            if (config_parse_api(optarg, &f->api[f->n_api++]) != 0) {
                fprintf(stderr, "dnsd: --api %s: expected unix:PATH or tcp:ADDR:PORT\n", optarg);
                return EXIT_CONFIG;
            }
            break;
        case OPT_DOMAIN:
            f->domain = optarg;
            break;
        case OPT_ZONES:
            f->zones = optarg;
            break;
        case OPT_LOG_LEVEL:
            f->log_level = optarg;
            break;
        case OPT_PID_FILE:
            f->pid_file = optarg;
            break;
        case OPT_DATA_DIR:
            f->data_dir = optarg;
            break;
        case OPT_REPAIR_JOURNAL:
            f->repair_journal = true;
            break;
        case OPT_USER:
        case OPT_GROUP:
            if (optarg[0] == '\0' && opt == OPT_USER) {
                fprintf(stderr, "dnsd: --user: must not be empty (root keeps running as root)\n");
                return EXIT_CONFIG;
            }
            if (strlen(optarg) >= sizeof(((struct dnsd_config *)0)->user)) {
                fprintf(stderr, "dnsd: --%s %s: longer than 63 bytes\n",
                        opt == OPT_USER ? "user" : "group", optarg);
                return EXIT_CONFIG;
            }
            *(opt == OPT_USER ? &f->user : &f->group) = optarg;
            break;
        case OPT_VERSION:
            printf("dnsd %s\n", DNSD_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "see 'dnsd --help'\n");
            return EXIT_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dnsd: unexpected argument '%s'; see 'dnsd --help'\n", argv[optind]);
        return EXIT_CONFIG;
    }
    return 0;
}

static int apply_flags(const struct flags *f, struct dnsd_config *cfg)
{
    if (f->n_listen > 0) {
        memcpy(cfg->listen, f->listen, f->n_listen * sizeof(f->listen[0]));
        cfg->n_listen = f->n_listen;
    }
    if (f->n_api > 0) {
        memcpy(cfg->api, f->api, f->n_api * sizeof(f->api[0]));
        cfg->n_api = f->n_api;
    }
    if (f->domain && config_normalize_domain(f->domain, cfg->domain, sizeof(cfg->domain)) != 0) {
        fprintf(stderr, "dnsd: --domain %s: not a valid domain name\n", f->domain);
        return EXIT_CONFIG;
    }
    if (f->zones) {
        snprintf(cfg->zones_dir, sizeof(cfg->zones_dir), "%s", f->zones);
        cfg->zones_dir_set = true;
    }
    if (f->log_level && log_parse_level(f->log_level, &cfg->log_level) != 0) {
        fprintf(stderr, "dnsd: --log-level %s: expected error, warn, info or debug\n",
                f->log_level);
        return EXIT_CONFIG;
    }
    if (f->pid_file)
        snprintf(cfg->pid_file, sizeof(cfg->pid_file), "%s", f->pid_file);
    if (f->data_dir)
        snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", f->data_dir);
    cfg->persist_repair = f->repair_journal;
    if (f->user)
        snprintf(cfg->user, sizeof(cfg->user), "%s", f->user);
    if (f->group)
        snprintf(cfg->group, sizeof(cfg->group), "%s", f->group);
    return 0;
}

/* Resolve who to run as (before anything opens, so a missing user fails fast) and say it. */
static int plan_privileges(const struct dnsd_config *cfg, struct privileges_plan *plan)
{
    char err[CONFIG_ERR_LEN];
    if (privileges_plan(cfg->user, cfg->group, geteuid(), plan, err, sizeof(err)) != 0) {
        log_error("main", "cannot start: %s", err);
        return EXIT_CONFIG;
    }
    if (!plan->was_root)
        log_info("main", "running as uid %lu (not root): the user and group options do not apply",
                 (unsigned long)geteuid());
    else if (plan->keep_root)
        log_warn("main",
                 "keeping root privileges because user is \"%s\": dnsd refuses to keep running "
                 "as root unless told to explicitly; set user to an unprivileged account "
                 "(default dnsd) to drop root after binding",
                 cfg->user);
    return 0;
}

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    struct signals *sig = handle->data;
    if (sig->daemon == NULL)
        return;
    log_info("main", "%s: shutting down", strsignal(signum));
    sd_notify(0, "STOPPING=1");
    daemon_stop(sig->daemon);
    sig->daemon = NULL;
    uv_close((uv_handle_t *)&sig->term, NULL);
    uv_close((uv_handle_t *)&sig->intr, NULL);
    uv_close((uv_handle_t *)&sig->hup, NULL);
}

static void on_hup(uv_signal_t *handle, int signum)
{
    struct signals *sig = handle->data;
    char err[CONFIG_ERR_LEN];
    (void)signum;
    if (sig->daemon == NULL)
        return;
    /* sd_notify(3): RELOADING=1 carries the reload's start time, and READY=1 follows it
     * whether or not the reload worked, since the previous zones are still served. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    if (daemon_reload(sig->daemon, err, sizeof(err)) != 0)
        log_error("zones", "reload failed, still serving the previous zones: %s", err);
    sd_notify(0, "READY=1");
}

/* Active checks and API watches each hold a descriptor: take every one the hard limit
 * allows (the soft limit is often 1024). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("main", "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_warn("main", "cannot raise the open file limit from %llu to %llu: %s",
                     (unsigned long long)was, (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        log_debug("main", "open file limit: unlimited");
    else
        log_debug("main", "open file limit: %llu", (unsigned long long)rl.rlim_cur);
}

/* Write our pid to path. Its directory may be writable by the user dnsd drops to, so a
 * link planted there must not make root overwrite another file: no symbolic link is
 * followed, and only a regular file with one name is truncated. */
static int write_pid_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        rc = DNSD_EINVAL;
    else if (ftruncate(fd, 0) != 0 || dprintf(fd, "%ld\n", (long)getpid()) < 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int main(int argc, char **argv)
{
    struct flags flags = {0};
    int rc = parse_flags(argc, argv, &flags);
    if (rc != 0)
        return rc;

    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN];
    config_init_defaults(&cfg);
    if (flags.config_file && config_load_file(flags.config_file, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "dnsd: %s\n", err);
        return EXIT_CONFIG;
    }
    rc = apply_flags(&flags, &cfg);
    if (rc != 0)
        return rc;
    if (config_validate(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "dnsd: %s\n", err);
        return EXIT_CONFIG;
    }
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_format);
    log_set_query_log(cfg.query_log_enabled, cfg.query_log_sample);
    raise_fd_limit();
    /* A client that goes away mid-answer must not kill the server. */
    signal(SIGPIPE, SIG_IGN);

    struct privileges_plan plan;
    if ((rc = plan_privileges(&cfg, &plan)) != 0)
        return rc;
    if (privileges_prepare(&plan, &cfg, err, sizeof(err)) != 0) {
        log_error("main", "cannot start: %s", err);
        return EXIT_RUNTIME;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    /* The main loop answers DNS too, inside liburcu read-side critical sections. */
    urcu_memb_register_thread();
    struct signals sig = {0};
    enum daemon_failure why;
    rc = daemon_start(&loop, &cfg, &sig.daemon, &why, err, sizeof(err));
    if (rc != 0) {
        log_error("main", "cannot start: %s", err);
        uv_run(&loop, UV_RUN_DEFAULT); /* let the partly started servers close */
        uv_loop_close(&loop);
        return why == DAEMON_FAILED_CONFIG ? EXIT_CONFIG
               : why == DAEMON_FAILED_DATA ? EXIT_DATA
                                           : EXIT_RUNTIME;
    }
    if (cfg.pid_file[0] && (rc = write_pid_file(cfg.pid_file)) != 0)
        log_warn("main", "cannot write pid file %s: %s", cfg.pid_file, dnsd_strerror(rc));
    /* Everything privileged is open: from here on dnsd is the configured user. */
    if (privileges_apply(&plan, &cfg, err, sizeof(err)) != 0) {
        log_error("main", "cannot start: %s", err);
        daemon_stop(sig.daemon);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        if (cfg.pid_file[0])
            unlink(cfg.pid_file);
        return EXIT_RUNTIME;
    }
    if (plan.drop)
        log_info("main", "dropped root: running as user %s (uid %lu), group %s (gid %lu)",
                 plan.user, (unsigned long)plan.uid, plan.group, (unsigned long)plan.gid);

    uv_signal_init(&loop, &sig.term);
    uv_signal_init(&loop, &sig.intr);
    uv_signal_init(&loop, &sig.hup);
    sig.term.data = sig.intr.data = sig.hup.data = &sig;
    uv_signal_start(&sig.term, on_stop_signal, SIGTERM);
    uv_signal_start(&sig.intr, on_stop_signal, SIGINT);
    uv_signal_start(&sig.hup, on_hup, SIGHUP);
    log_info("main", "dnsd %s ready", DNSD_VERSION);
    sd_notify(0, "READY=1");

    uv_run(&loop, UV_RUN_DEFAULT);
    if (cfg.pid_file[0])
        unlink(cfg.pid_file);
    rc = uv_loop_close(&loop);
    if (rc != 0)
        log_warn("main", "loop closed with handles still open: %s", uv_strerror(rc));
    log_info("main", "stopped");
    return 0;
}
