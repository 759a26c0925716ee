/* SPDX-License-Identifier: BSD-2-Clause
 * A stand-in for libFuzzer's main, for builds without it (gcc, CTest): runs
 * LLVMFuzzerInitialize (when the target defines it) and then LLVMFuzzerTestOneInput once
 * per file named on the command line or found in a directory named there (hidden files
 * skipped, name order). A failing invariant aborts, as under libFuzzer.
 * Exit: 0 when every input ran, 1 when a file or directory cannot be read or there was no
 * input at all (an empty corpus proves nothing), 2 usage. */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Weak, so that targets without an initializer link; NULL then. */
#pragma weak LLVMFuzzerInitialize

/* Read a whole file into a buffer of exactly its size. Returns: 0, -1 (printed). */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) != 0) {
        perror(path);
        if (fp)
            fclose(fp);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || fread(buf, 1, len, fp) != len) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    *out = buf;
    *out_len = len;
    return 0;
}

static int run_file(const char *path, size_t *count)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_file(path, &data, &len) != 0)
        return -1;
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    (*count)++;
    return 0;
}

static int skip_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int run_dir(const char *dir, size_t *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, skip_hidden, alphasort);
    if (n < 0) {
        perror(dir);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && run_file(path, count) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) != 0
                                       : run_file(argv[i], &count) != 0) {
            rc = 1;
        }
    }
    if (count == 0)
        rc = 1;
    fprintf(stderr, "replay: %zu inputs, %s\n", count, rc == 0 ? "all ran" : "FAILED");
    return rc;
}
