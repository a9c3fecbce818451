/* jinja_arena.c - the bump allocator behind templates and renders, the output
 * buffer, and the error helper that prefixes the template name and line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_int.h"

struct ja_chunk {
    ja_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { JA_CHUNK_BYTES = 64 * 1024 };

void *ja_alloc(jarena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!n)
        n = 16;
    ja_chunk *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = n > JA_CHUNK_BYTES / 4 ? n : JA_CHUNK_BYTES;
        if (a->limit_bytes && a->total_bytes + cap > a->limit_bytes)
            return NULL;
        ja_chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        a->total_bytes += cap;
        if (h && cap != JA_CHUNK_BYTES) {
            /* a big block: keep filling the current chunk afterwards */
            c->next = h->next;
            h->next = c;
            c->used = n;
            memset(c->data, 0, n);
            return c->data;
        }
        c->next = h;
        a->head = h = c;
    }
    void *p = h->data + h->used;
    h->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n)
{
    char *p = ja_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void ja_free(jarena *a)
{
    ja_chunk *c = a->head;
    while (c) {
        ja_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total_bytes = 0;
}

int jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->cap - b->n <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= n) {
            if (cap > ((size_t)1 << 40))
                return cl_err(CL_ERR_NOMEM, "chat template: output too large");
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p)
            return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return CL_OK;
}

int jb_puts(jbuf *b, const char *s) { return jb_put(b, s, strlen(s)); }

int jb_putc(jbuf *b, char c) { return jb_put(b, &c, 1); }

int jb_printf(jbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return cl_err(CL_ERR_INTERNAL, "chat template: formatting failed");
    return jb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void jb_free(jbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

int jerr(const jctx *c, int line, int status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cl_err(status, "%s line %d: %s", c->what, line, msg);
}
