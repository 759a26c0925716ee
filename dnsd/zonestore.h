/* SPDX-License-Identifier: BSD-2-Clause
 * The zone store: static zones read from the *.zone files of a directory (RFC 1035 master
 * files, parsed with ldns), plus a synthesised apex (SOA, NS and the NS host's addresses)
 * for the service domain when no file provides one. Immutable once built: a reload builds
 * a new store and the server swaps the pointer. Owns every ldns object in it. No sockets.
 * Loop: any thread may read a built store; building happens on the main loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

/* The apex synthesised for the service domain when no zone file has it as origin. */
struct zonestore_apex {
    const char *domain;              /* absolute, e.g. "service.internal." */
    const char *ns_name;             /* absolute NS target, e.g. "ns.service.internal." */
    const char *const *ns_addresses; /* textual IPv4/IPv6 addresses of ns_name, if it is
                                        inside domain; may be empty */
    size_t n_ns_addresses;
    const char *rname; /* absolute SOA RNAME, e.g. "hostmaster.service.internal." */
    uint32_t serial;   /* base serial; the query path adds the registry serial */
    uint32_t refresh, retry, expire;
    uint32_t minimum; /* SOA MINIMUM: the negative-caching TTL (RFC 2308) */
    uint32_t ttl;     /* TTL of the SOA, NS and address records */
};

/* What a name is within a zone (RFC 1034 §4.3.2 algorithm). */
enum zonestore_kind {
    ZONESTORE_NXDOMAIN,          /* no such name, no wildcard covers it */
    ZONESTORE_NAME,              /* the name owns records (node has at least one RRset) */
    ZONESTORE_EMPTY_NONTERMINAL, /* the name exists only because names below it do */
    ZONESTORE_WILDCARD,          /* no such name, but the wildcard node covers it (RFC 4592) */
    ZONESTORE_DELEGATION,        /* the name is at or below a zone cut; node is the cut (its NS) */
};

struct zonestore;
struct zonestore_zone;
struct zonestore_node;

struct zonestore_match {
    enum zonestore_kind kind;
    const struct zonestore_node *node; /* borrowed from the store; NULL for NXDOMAIN and
                                          EMPTY_NONTERMINAL */
};

/* Build a store from every *.zone file in dir (files read in name order; the origin of a
 * file is the $ORIGIN before its first record or, without one, the file name less ".zone"),
 * then add the apex for apex->domain unless a file has that origin. dir may be NULL: apex
 * only. Files are read with default TTL 3600 and class IN; names beginning with '.' and
 * entries that are not regular files are skipped; $INCLUDE is a syntax error.
 * Returns: 0 and *out, DNSD_ENOENT (dir missing; err says which), DNSD_EPARSE (err holds
 * "file:line: message", also for a relative $ORIGIN), DNSD_EINVAL (a zone without SOA, two
 * files with one origin, a record outside its zone, a file name that is no domain name: err
 * names the file; or an apex whose names are not absolute or whose ns_addresses are not
 * addresses: err starts "apex: "), DNSD_EIO (a *.zone entry that cannot be opened or read,
 * such as a dangling symlink; err names it), DNSD_ENOMEM.
 * Ownership: *out is the caller's, freed with zonestore_free. */
int zonestore_load(const char *dir, const struct zonestore_apex *apex, struct zonestore **out,
                   char *err, size_t err_len);
void zonestore_free(struct zonestore *zs);

/* Check the store's invariants (zones and nodes in canonical order, every record under its
 * node's name and inside its zone, an SOA at each origin); for tests and asserts.
 * Returns: true when they all hold. */
bool zonestore_check(const struct zonestore *zs);

size_t zonestore_zone_count(const struct zonestore *zs);

/* The i-th zone in canonical order of origins (RFC 4034 §6.1), for listings and logs.
 * Returns: borrowed zone, or NULL when i >= zonestore_zone_count(zs). */
const struct zonestore_zone *zonestore_zone_at(const struct zonestore *zs, size_t i);

/* The zone with the longest origin that is qname or an ancestor of it.
 * Returns: borrowed zone, or NULL when no zone contains qname. */
const struct zonestore_zone *zonestore_find_zone(const struct zonestore *zs, const ldns_rdf *qname);

/* Returns: the zone whose origin equals name exactly (borrowed), or NULL. */
const struct zonestore_zone *zonestore_zone_by_origin(const struct zonestore *zs,
                                                      const ldns_rdf *name);

const ldns_rdf *zonestore_zone_origin(const struct zonestore_zone *zone);
/* The zone's SOA record (borrowed; never NULL for a loaded zone). */
const ldns_rr *zonestore_zone_soa(const struct zonestore_zone *zone);
/* Was this zone synthesised (true) or read from a file (false)? */
bool zonestore_zone_is_synthetic(const struct zonestore_zone *zone);
/* The path the zone was read from (dir joined with the file name), for logs.
 * Returns: borrowed string, or NULL for the synthesised apex. */
const char *zonestore_zone_file(const struct zonestore_zone *zone);
/* The number of records in the zone, SOA included. */
size_t zonestore_zone_rr_count(const struct zonestore_zone *zone);

/* Classify qname (which should be within zone; a name outside it is NXDOMAIN) and find its
 * node. Names compare case-insensitively. The cut itself is DELEGATION too (its NS is not
 * authoritative data). Never allocates; O(labels * log(records)). */
void zonestore_lookup(const struct zonestore_zone *zone, const ldns_rdf *qname,
                      struct zonestore_match *out);

/* The node's owner name, lower-cased (for a wildcard node, the wildcard name).
 * Returns: borrowed name. */
const ldns_rdf *zonestore_node_name(const struct zonestore_node *node);

/* The node's RRset of type (owner names as in the zone; a wildcard node's owner is the
 * wildcard name). Returns: borrowed list, or NULL when the node has no such RRset. */
const ldns_rr_list *zonestore_node_rrset(const struct zonestore_node *node, ldns_rr_type type);

/* Every record the node owns, for ANY-less listings and tests. Returns: borrowed list. */
const ldns_rr_list *zonestore_node_all(const struct zonestore_node *node);

/* The RRset of type owned by exactly name in zone (no wildcard, no delegation logic): used
 * for additional-section addresses of SRV/NS/MX targets.
 * Returns: borrowed list, or NULL. */
const ldns_rr_list *zonestore_find_rrset(const struct zonestore_zone *zone, const ldns_rdf *name,
                                         ldns_rr_type type);
