/* SPDX-License-Identifier: BSD-2-Clause
 * Naming rules and defaults shared by dnsd, regctl and the tests: what a service name,
 * instance id or tag may look like, and where dnsd listens unless told otherwise. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define DNSD_LABEL_MAX 63 /* RFC 1035 §2.3.4 */
#define DNSD_DEFAULT_DOMAIN "service.internal."
#define DNSD_DEFAULT_DNS_PORT 8053
#define DNSD_DEFAULT_API_SOCKET "/run/dnsd/api.sock"
#define DNSD_API_ENV "DNSD_API"

/* Is label a hostname label (RFC 952/1123: letters, digits, inner hyphens, 1..63 bytes)?
 * Service names, instance ids and tags all follow this rule, so a label that starts with
 * '_' (as in _web._tcp or _sub) can never be mistaken for one of them. */
bool dnsd_label_is_valid(const char *label);

/* Lower-case label in place (ASCII only; DNS names compare case-insensitively). */
void dnsd_label_lower(char *label);
