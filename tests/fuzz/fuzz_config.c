/* SPDX-License-Identifier: BSD-2-Clause
 * Fuzz target: the config loader. The input is written to a temporary file (one per process,
 * rewritten for each input) and read with config_load_file over the defaults. Aborts unless
 * a failure leaves the config byte for byte unchanged with an error message, and a success
 * gives a config that passes config_validate. */
#include "fuzz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dnsd/error.h"

static char path[64];
static int fd = -1;

static void remove_file(void)
{
    if (fd >= 0)
        unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "/tmp/dnsd-fuzz-config-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0) {
        perror("fuzz_config: mkstemp");
        abort();
    }
    atexit(remove_file);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();

    /* Zeroed first so that padding compares equal too. */
    static struct dnsd_config cfg, before;
    memset(&cfg, 0, sizeof(cfg));
    config_init_defaults(&cfg);
    memcpy(&before, &cfg, sizeof(cfg));

    char err[CONFIG_ERR_LEN];
    memset(err, 0x5a, sizeof(err));
    int rc = config_load_file(path, &cfg, err, sizeof(err));
    if (rc == 0) {
        char why[CONFIG_ERR_LEN] = "";
        fuzz_check(config_validate(&cfg, why, sizeof(why)) == 0, "a loaded config validates");
    } else {
        fuzz_check(rc == DNSD_EPARSE || rc == DNSD_EINVAL || rc == DNSD_ENOENT,
                   "a failure is EPARSE, EINVAL or ENOENT");
        fuzz_check(memcmp(&cfg, &before, sizeof(cfg)) == 0, "config unchanged on failure");
        fuzz_check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0',
                   "an error message is given");
    }
    return 0;
}
