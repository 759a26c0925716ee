/* SPDX-License-Identifier: BSD-2-Clause
 * dnsd_strerror(): names the DNSD_E* codes; falls back to strerror() for other -errno. */
#include "dnsd/error.h"

#include <string.h>

const char *dnsd_strerror(int err)
{
    switch (err) {
    case DNSD_OK:
        return "success";
    case DNSD_ENOMEM:
        return "out of memory";
    case DNSD_EINVAL:
        return "invalid argument";
    case DNSD_ENOENT:
        return "not found";
    case DNSD_EEXIST:
        return "already exists";
    case DNSD_ERANGE:
        return "value out of range";
    case DNSD_EIO:
        return "input/output error";
    case DNSD_ENOSPC:
        return "capacity exhausted";
    case DNSD_EPARSE:
        return "syntax error";
    default:
        return err < 0 ? strerror(-err) : "unknown error";
    }
}
