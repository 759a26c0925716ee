/* SPDX-License-Identifier: BSD-2-Clause
 * The hot path's message writer. Compression mirrors ldns_dname2buffer_wire_compress: a
 * name is looked up whole, then suffix by suffix, among the names written so far
 * (case-insensitively, the first writer of a name wins), and each label written in full is
 * remembered when its offset fits a pointer (RFC 1035 §4.1.4: 14 bits). No allocation. */
#include "render.h"

#include <string.h>

/* The largest offset a compression pointer can hold. */
#define RENDER_MAX_POINTER 0x3fff

void render_init(struct render *r, uint8_t *buf, size_t cap)
{
    r->buf = buf;
    r->cap = cap;
    r->len = 12;
    r->overflow = cap < 12;
    r->n_names = 0;
    if (!r->overflow)
        memset(buf, 0, 12);
}

void render_bytes(struct render *r, const void *data, size_t len)
{
    if (r->overflow || r->cap - r->len < len) {
        r->overflow = true;
        return;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
}

void render_u8(struct render *r, uint8_t v)
{
    render_bytes(r, &v, 1);
}

void render_u16(struct render *r, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    render_bytes(r, b, 2);
}

void render_u32(struct render *r, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    render_bytes(r, b, 4);
}

size_t render_name_len(const uint8_t *name)
{
    size_t n = 0;
    while (name[n] != 0)
        n += 1 + (size_t)name[n];
    return n + 1;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Is the name written at pos (following our own pointers) equal to name, ignoring case? */
static bool equal_at(const struct render *r, size_t pos, const uint8_t *name)
{
    for (;;) {
        uint8_t b = r->buf[pos];
        while ((b & 0xc0U) == 0xc0U) {
            pos = ((size_t)(b & 0x3fU) << 8) | r->buf[pos + 1];
            b = r->buf[pos];
        }
        if (b != name[0])
            return false;
        if (b == 0)
            return true;
        for (size_t i = 1; i <= b; i++) {
            if (lower(r->buf[pos + i]) != lower(name[i]))
                return false;
        }
        pos += 1 + (size_t)b;
        name += 1 + (size_t)b;
    }
}

/* The offset of a remembered name equal to name, or 0 when there is none. */
static size_t find_name(const struct render *r, const uint8_t *name)
{
    for (size_t i = 0; i < r->n_names; i++) {
        if (equal_at(r, r->names[i], name))
            return r->names[i];
    }
    return 0;
}

static void remember(struct render *r, size_t pos)
{
    if (pos <= RENDER_MAX_POINTER && r->n_names < RENDER_MAX_NAMES)
        r->names[r->n_names++] = (uint16_t)pos;
}

void render_question(struct render *r, const uint8_t *question, size_t qname_len)
{
    size_t start = r->len;
    render_bytes(r, question, qname_len + 4);
    if (r->overflow)
        return;
    for (size_t p = 0; question[p] != 0; p += 1 + (size_t)question[p])
        remember(r, start + p);
}

void render_name(struct render *r, const uint8_t *name, bool compress)
{
    if (!compress) {
        render_bytes(r, name, render_name_len(name));
        return;
    }
    while (name[0] != 0 && !r->overflow) {
        size_t at = find_name(r, name);
        if (at != 0) {
            render_u16(r, (uint16_t)(0xc000U | at));
            return;
        }
        remember(r, r->len);
        render_bytes(r, name, 1 + (size_t)name[0]);
        name += 1 + (size_t)name[0];
    }
    render_u8(r, 0);
}

size_t render_rr_begin(struct render *r, const uint8_t *owner, uint16_t type, uint32_t ttl)
{
    render_name(r, owner, true);
    render_u16(r, type);
    render_u16(r, 1); /* class IN */
    render_u32(r, ttl);
    render_u16(r, 0); /* RDLENGTH, filled in by render_rr_end */
    return r->len;
}

void render_rr_end(struct render *r, size_t rdata_start)
{
    if (r->overflow)
        return;
    size_t n = r->len - rdata_start;
    r->buf[rdata_start - 2] = (uint8_t)(n >> 8);
    r->buf[rdata_start - 1] = (uint8_t)n;
}

void render_fail(struct render *r)
{
    r->overflow = true;
}

void render_cut(struct render *r, size_t len)
{
    r->len = len;
    while (r->n_names > 0 && r->names[r->n_names - 1] >= len)
        r->n_names--;
}
