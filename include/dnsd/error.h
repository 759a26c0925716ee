/* SPDX-License-Identifier: BSD-2-Clause
 * The error codes every dnsd module returns: 0 for success, a negative DNSD_E* for failure.
 * Where an errno value fits, the code equals -errno so libc errors pass through unchanged. */
#pragma once

#include <errno.h>

enum dnsd_err {
    DNSD_OK = 0,
    DNSD_ENOMEM = -ENOMEM, /* out of memory */
    DNSD_EINVAL = -EINVAL, /* invalid argument or input */
    DNSD_ENOENT = -ENOENT, /* no such service, instance, file or zone */
    DNSD_EEXIST = -EEXIST, /* already exists */
    DNSD_ERANGE = -ERANGE, /* a value or a size limit exceeded */
    DNSD_EIO = -EIO,       /* I/O failure */
    DNSD_ENOSPC = -ENOSPC, /* a configured capacity is full */
    DNSD_EPARSE = -1000,   /* syntax error in a file (config, zone) */
};

/* Describe a DNSD_E* code (or any -errno) in a few words.
 * Returns: a static string; never NULL. */
const char *dnsd_strerror(int err);
