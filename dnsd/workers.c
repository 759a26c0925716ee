/* SPDX-License-Identifier: BSD-2-Clause
 * DNS worker threads: one loop and one UDP server per thread. The servers are started on
 * the caller's thread, before their threads run, so a bind error is reported at once; a
 * thread then only runs its loop until an async stop request closes the server. */
#include "workers.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>
#include <uv.h>

#include "config.h"
#include "dnsd/error.h"
#include "log.h"

struct worker {
    uv_loop_t loop;
    uv_async_t stop;    /* on loop: closes the server, so that the loop ends */
    uv_thread_t thread; /* valid once started */
    struct server *dns; /* owned until server_stop; NULL until started */
    bool loop_ready;    /* loop initialised */
    bool stop_ready;    /* stop initialised */
    bool thread_started;
    unsigned number; /* 1.., for the thread's name */
};

struct workers {
    size_t n;
    struct worker *w; /* owned array of n */
};

/* On the worker's thread; the main thread no longer touches w->dns once it asked. */
static void on_stop(uv_async_t *async)
{
    struct worker *w = async->data;
    server_stop(w->dns);
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void run_worker(void *arg)
{
    struct worker *w = arg;
    /* Named for top -H, perf and the tests (at most 15 characters). */
    char name[16];
    snprintf(name, sizeof(name), "dnsd-udp-%u", w->number % 100000);
    pthread_setname_np(pthread_self(), name);
    urcu_memb_register_thread();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    urcu_memb_unregister_thread();
}

/* Close what worker w has on its loop without a thread (a start that failed half way). */
static void close_unstarted(struct worker *w)
{
    if (w->dns)
        server_stop(w->dns);
    w->dns = NULL;
    if (w->stop_ready)
        uv_close((uv_handle_t *)&w->stop, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int workers_start(size_t n, const struct server_config *cfg, const struct server *main,
                  const struct zonestore *zs, const struct answers *ans, struct workers **out,
                  char *err, size_t err_len)
{
    int rc = DNSD_ENOMEM;
    struct config_listen listen[CONFIG_MAX_LISTEN];
    if (cfg->n_listen > CONFIG_MAX_LISTEN) {
        snprintf(err, err_len, "DNS workers: more than %d listen addresses", CONFIG_MAX_LISTEN);
        return DNSD_EINVAL;
    }
    struct workers *ws = calloc(1, sizeof(*ws));
    if (ws == NULL || (ws->w = calloc(n ? n : 1, sizeof(*ws->w))) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    ws->n = n;
    /* Port 0 was resolved by the main server: every worker joins the port it got. */
    memcpy(listen, cfg->listen, cfg->n_listen * sizeof(listen[0]));
    for (size_t i = 0; i < cfg->n_listen; i++)
        listen[i].port = server_udp_port(main, i);
    struct server_config wcfg = *cfg;
    wcfg.listen = listen;
    wcfg.udp_only = true;
    wcfg.udp_sharing = SERVER_UDP_JOIN;

    for (size_t i = 0; i < n; i++) {
        struct worker *w = &ws->w[i];
        w->number = (unsigned)i + 1;
        if ((rc = uv_loop_init(&w->loop)) != 0) {
            snprintf(err, err_len, "DNS worker %zu: %s", i + 1, uv_strerror(rc));
            goto fail;
        }
        w->loop_ready = true;
        if ((rc = uv_async_init(&w->loop, &w->stop, on_stop)) != 0) {
            snprintf(err, err_len, "DNS worker %zu: %s", i + 1, uv_strerror(rc));
            goto fail;
        }
        w->stop.data = w;
        w->stop_ready = true;
        char why[256];
        if ((rc = server_start(&w->loop, &wcfg, zs, ans, &w->dns, why, sizeof(why))) != 0) {
            w->dns = NULL; /* server_start closes what it opened */
            snprintf(err, err_len, "DNS worker %zu: %s", i + 1, why);
            goto fail;
        }
    }
    /* Signals are the main loop's to handle (uv_signal_t there): a thread inherits the
     * mask it is created with, so it never runs a moment with them unblocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (size_t i = 0; i < n; i++) {
        struct worker *w = &ws->w[i];
        if ((rc = uv_thread_create(&w->thread, run_worker, w)) != 0)
            break;
        w->thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, err_len, "DNS worker: cannot start a thread: %s", uv_strerror(rc));
        goto fail;
    }
    *out = ws;
    return 0;

fail:
    workers_stop(ws);
    return rc;
}

size_t workers_count(const struct workers *w)
{
    return w ? w->n : 0;
}

const struct metrics_dns *workers_metrics(const struct workers *w, size_t i)
{
    return server_metrics(w->w[i].dns);
}

void workers_set_zonestore(struct workers *w, const struct zonestore *zs)
{
    for (size_t i = 0; w && i < w->n; i++) {
        if (w->w[i].dns)
            server_set_zonestore(w->w[i].dns, zs);
    }
}

void workers_stop(struct workers *ws)
{
    if (ws == NULL)
        return;
    for (size_t i = 0; ws->w && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->thread_started)
            uv_async_send(&w->stop);
        else if (w->loop_ready)
            close_unstarted(w);
    }
    for (size_t i = 0; ws->w && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->thread_started)
            uv_thread_join(&w->thread);
        if (w->loop_ready && uv_loop_close(&w->loop) != 0)
            log_warn("dns", "DNS worker %zu: loop closed with handles still open", i + 1);
    }
    free(ws->w);
    free(ws);
}
