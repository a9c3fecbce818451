#include "tokenizer/normalize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/status.h"

size_t cl_utf8_invalid_at(const char *text, size_t len)
{
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            /* ASCII runs are the common case: skip them eight bytes at a time */
            uint64_t v;
            while (i + 8 <= len && (memcpy(&v, p + i, 8), !(v & 0x8080808080808080ull)))
                i += 8;
            if (i < len && p[i] < 0x80)
                i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return i;
        }
        if (i + n > len || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

/* 1 if NFC may cut the text before code point cp >= U+0300: NFC(a + b) equals
 * NFC(a) + NFC(b) whenever b starts with such a character. It must be a starter
 * (ccc 0) that never composes with what precedes it and has no canonical
 * decomposition (conservative: fewer cuts is always correct, only slower). Hangul
 * composes by arithmetic, not by table: vowel and trailing jamo join what precedes
 * them (UAX #15). U+11A7 (TBase) is no trailing jamo, but utf8proc 2.6 would fuse
 * it into a preceding LV syllable: kept as a cut, it never meets one. */
static int nfc_cut_before(int32_t cp)
{
    if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2))
        return 0;
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->combining_class != 0)
        return 0;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) /* second of a pair */
        return 0;
    return p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0;
}

/* Decodes the valid UTF-8 character at p (lead byte >= 0xC0). */
static int32_t decode(const uint8_t *p, size_t *n)
{
    if (p[0] < 0xE0) {
        *n = 2;
        return (int32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    }
    if (p[0] < 0xF0) {
        *n = 3;
        return (int32_t)(p[0] & 0x0F) << 12 | (int32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    }
    *n = 4;
    return (int32_t)(p[0] & 0x07) << 18 | (int32_t)(p[1] & 0x3F) << 12 |
           (int32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
}

typedef struct {
    const char *text;
    char *out;
    size_t len, cap, copied; /* text[0..copied) is accounted for in out */
} nfc_buf;

static int append(nfc_buf *b, const char *p, size_t n)
{
    if (n == 0)
        return CL_OK;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *nb = realloc(b->out, cap);
        if (!nb)
            return cl_err(CL_ERR_NOMEM, "out of memory (NFC normalization)");
        b->out = nb;
        b->cap = cap;
    }
    memcpy(b->out + b->len, p, n);
    b->len += n;
    return CL_OK;
}

/* Normalizes text[a..b) (a segment of several characters) into the output. */
static int normalize_segment(nfc_buf *b, size_t a, size_t e)
{
    CL_TRY(append(b, b->text + b->copied, a - b->copied));
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)b->text + a,
                                      (utf8proc_ssize_t)(e - a), &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(dst);
        if (n == UTF8PROC_ERROR_NOMEM)
            return cl_err(CL_ERR_NOMEM, "out of memory (NFC normalization)");
        return cl_err(CL_ERR_FORMAT, "NFC normalization failed: %s", utf8proc_errmsg(n));
    }
    int rc = append(b, (const char *)dst, (size_t)n);
    free(dst);
    b->copied = e;
    return rc;
}

int cl_nfc(const char *text, size_t len, const char **out, size_t *out_len, int *owned)
{
    /* The text is cut before every character that allows it (all below U+0300 do,
     * and most others). A piece made of one such character is already NFC, so only
     * pieces holding another character (a combining mark, a Hangul jamo, one with a
     * decomposition) go through utf8proc, and a text that needs nothing is
     * returned as is, without a copy. */
    const uint8_t *p = (const uint8_t *)text;
    nfc_buf b = {text, NULL, 0, 0, 0};
    size_t seg = 0, i = 0;
    int dirty = 0; /* the piece that started at seg may change */
    while (i < len) {
        size_t n = 1;
        int cut;
        uint64_t v;
        if (i + 8 <= len && (memcpy(&v, p + i, 8), !(v & 0x8080808080808080ull))) {
            if (dirty)
                CL_TRY(normalize_segment(&b, seg, i));
            dirty = 0;
            seg = i + 7; /* eight ASCII characters: each is a piece of its own */
            i += 8;
            continue;
        }
        if (p[i] < 0xCC) { /* below U+0300 */
            n = p[i] < 0x80 ? 1 : 2;
            cut = 1;
        } else {
            cut = nfc_cut_before(decode(p + i, &n));
        }
        if (cut) {
            if (dirty)
                CL_TRY(normalize_segment(&b, seg, i));
            seg = i;
            dirty = 0;
        } else {
            dirty = 1;
        }
        i += n;
    }
    int rc = CL_OK;
    if (dirty)
        rc = normalize_segment(&b, seg, len);
    if (rc == CL_OK && b.out)
        rc = append(&b, text + b.copied, len - b.copied);
    if (rc != CL_OK) {
        free(b.out);
        return rc;
    }
    if (!b.out) {
        *out = text;
        *out_len = len;
        *owned = 0;
    } else {
        *out = b.out;
        *out_len = b.len;
        *owned = 1;
    }
    return CL_OK;
}
