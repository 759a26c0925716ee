/* SPDX-License-Identifier: BSD-2-Clause
 * dnsd's version, shared by dnsd, regctl and the tests. */
#pragma once

#define DNSD_VERSION "0.1.0"
