/* SPDX-License-Identifier: BSD-2-Clause
 * A lean DNS message writer for the query hot path: the request's question copied byte for
 * byte, records appended with name compression that makes the same choices as ldns'
 * compressing writer (RFC 1035 §4.1.4), and the header filled in last. It writes into a
 * caller-owned buffer and never allocates. No policy: which records to write is query's
 * decision; wire.c stays the general parser and renderer.
 * Loop: any thread; no shared state. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Names (label starts) remembered for compression; later names are written in full. */
#define RENDER_MAX_NAMES 256

/* A message being written. Storage is the caller's: render_init, then writes, then read
 * buf[0..len). */
struct render {
    /* private: use the functions below */
    uint8_t *buf; /* borrowed from the caller */
    size_t cap;
    size_t len;
    bool overflow; /* a write did not fit in cap: the message is unusable */
    uint16_t names[RENDER_MAX_NAMES];
    size_t n_names;
};

/* Start a message in buf[0..cap) (cap >= 12): a zeroed header, nothing else. */
void render_init(struct render *r, uint8_t *buf, size_t cap);

/* Copy the question (name of qname_len bytes, uncompressed, then type and class) from
 * question[] right after the header, keeping its spelling, and remember its name. */
void render_question(struct render *r, const uint8_t *question, size_t qname_len);

/* Append name (uncompressed wire form, any case). compress: point at the longest suffix
 * already written (case-insensitive) and remember the labels written here; otherwise write
 * it whole and remember nothing (RFC 2782: SRV targets are not compressed). */
void render_name(struct render *r, const uint8_t *name, bool compress);

void render_u8(struct render *r, uint8_t v);
void render_u16(struct render *r, uint16_t v);
void render_u32(struct render *r, uint32_t v);
void render_bytes(struct render *r, const void *data, size_t len);

/* Append an RR's owner (compressed), type, class IN and ttl, and a placeholder RDLENGTH.
 * Returns: where the RDATA starts, for render_rr_end. */
size_t render_rr_begin(struct render *r, const uint8_t *owner, uint16_t type, uint32_t ttl);
/* Fill in the RDLENGTH of the record whose RDATA started at rdata_start. */
void render_rr_end(struct render *r, size_t rdata_start);

/* Mark the message unusable, as a write that did not fit does: for a caller that finds a
 * part it cannot write (a name longer than 255 bytes). */
void render_fail(struct render *r);

/* Cut the message back to len bytes (len <= current length), forgetting the names
 * remembered past the cut. */
void render_cut(struct render *r, size_t len);

/* The uncompressed length of the wire name at name (labels, then the root byte). */
size_t render_name_len(const uint8_t *name);
