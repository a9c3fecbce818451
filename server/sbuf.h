/* sbuf.h - a growable byte buffer for building HTTP bodies and Server-Sent Events, with
 * JSON string escaping that always yields valid UTF-8 (generated text may end inside a
 * character: invalid bytes become U+FFFD, NUL bytes are dropped). Appends never fail
 * silently: after an allocation failure the buffer is marked failed (sb.oom) and
 * further appends do nothing, so a caller checks once at the end. */
#ifndef SRV_SBUF_H
#define SRV_SBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

void sb_free(sbuf *b);
void sb_reset(sbuf *b);                 /* length 0, keeps the memory */
void sb_put(sbuf *b, const void *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_i64(sbuf *b, int64_t v);
void sb_double(sbuf *b, double v);      /* shortest "%.9g"-style; non-finite -> null */
/* A quoted JSON string of s[0..n) (escaped, made valid UTF-8). */
void sb_json_str(sbuf *b, const char *s, size_t n);
/* Takes the bytes out (NUL-terminated; the caller frees them); the buffer is empty. */
char *sb_take(sbuf *b, size_t *len);

#endif
