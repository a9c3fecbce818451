#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

#include "collage.h"

int cl_utf8_seq_len(const unsigned char *p, size_t avail)
{
    if (!avail)
        return 0;
    int n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
                                                : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if ((size_t)n > avail || (n == 2 && p[0] < 0xc2))
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
        return 0; /* overlong / surrogate */
    if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || p[0] > 0xf4 || (p[0] == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

char *cl_utf8_sanitize(const char *s, size_t len)
{
    /* each invalid byte becomes U+FFFD (3 bytes), NUL bytes are dropped */
    char *out = malloc(3 * len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        int n = cl_utf8_seq_len(p + i, len - i);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            if (p[i])
                memcpy(out + o, p + i, (size_t)n), o += (size_t)n;
            i += (size_t)n;
        }
    }
    out[o] = 0;
    return out;
}
