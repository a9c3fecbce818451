#include "tokenizer/normalize.h"

#include <stdint.h>
#include <stdlib.h>
#include <utf8proc.h>

#include "common/status.h"

size_t cl_utf8_invalid_at(const char *text, size_t len)
{
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
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

int cl_nfc(const char *text, size_t len, const char **out, size_t *out_len, int *owned)
{
    /* Code points below U+0300 are all NFC-stable starters that never compose with
     * what precedes them, so text without them is already NFC. A lead byte >= 0xCC
     * is the only way to write a code point >= U+0300. */
    size_t i = 0;
    const uint8_t *p = (const uint8_t *)text;
    while (i < len && p[i] < 0xCC)
        i++;
    if (i == len) {
        *out = text;
        *out_len = len;
        *owned = 0;
        return CL_OK;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len,
                                      &dst, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(dst);
        if (n == UTF8PROC_ERROR_NOMEM)
            return cl_err(CL_ERR_NOMEM, "out of memory (NFC normalization)");
        return cl_err(CL_ERR_FORMAT, "text: NFC normalization failed: %s",
                      utf8proc_errmsg(n));
    }
    *out = (const char *)dst;
    *out_len = (size_t)n;
    *owned = 1;
    return CL_OK;
}
