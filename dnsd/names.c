/* SPDX-License-Identifier: BSD-2-Clause
 * Validation of the labels a registration may use (service, instance id, tag). */
#include "dnsd/names.h"

#include <string.h>

static bool is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool dnsd_label_is_valid(const char *label)
{
    size_t len = label ? strlen(label) : 0;
    if (len == 0 || len > DNSD_LABEL_MAX)
        return false;
    if (label[0] == '-' || label[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_ldh(label[i]))
            return false;
    }
    return true;
}

void dnsd_label_lower(char *label)
{
    for (; *label; label++) {
        if (*label >= 'A' && *label <= 'Z')
            *label = (char)(*label - 'A' + 'a');
    }
}
