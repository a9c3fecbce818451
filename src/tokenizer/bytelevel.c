#include "tokenizer/bytelevel.h"

/* Printable bytes keep their own code point (GPT-2's bytes_to_unicode). */
static int printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

uint32_t cl_bytelevel_char(uint8_t b)
{
    if (printable(b))
        return b;
    /* The others are numbered from 256 in byte order: 0x00..0x20 (33 bytes),
     * 0x7F..0xA0 (34 bytes), then 0xAD. */
    if (b <= 0x20)
        return 256u + b;
    if (b <= 0xA0)
        return 256u + 33u + (b - 0x7Fu);
    return 256u + 33u + 34u; /* 0xAD */
}

int cl_bytelevel_byte(uint32_t cp)
{
    if (cp < 256)
        return printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33)
        return (int)(cp - 256);
    if (cp < 256 + 33 + 34)
        return (int)(cp - 256 - 33 + 0x7F);
    if (cp == 256 + 33 + 34)
        return 0xAD;
    return -1;
}

size_t cl_bytelevel_encode(const uint8_t *raw, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = cl_bytelevel_char(raw[i]);
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

long cl_bytelevel_decode(const char *s, size_t len, uint8_t *out)
{
    const uint8_t *p = (const uint8_t *)s;
    long o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i++];
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < len && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* 3- and 4-byte characters are never map characters */
        }
        int b = cl_bytelevel_byte(cp);
        if (b < 0)
            return -1;
        out[o++] = (uint8_t)b;
    }
    return o;
}
