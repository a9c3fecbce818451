/* jscan.h - a small, strict pull scanner for large JSON files.
 *
 * tokenizer.json is 11 MB, almost all of it model.vocab and model.merges: building
 * a cJSON tree of it takes ~150 ms and ~450k allocations. This scanner walks the
 * text in place instead, so the loader reads those two sections straight into its
 * tables and hands only the small sections to cJSON (via cl_jscan_span). It checks
 * the grammar as strictly as a full parser on everything it reads or skips. */
#ifndef CL_TOKENIZER_JSCAN_H
#define CL_TOKENIZER_JSCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *base, *p, *end;
    const char *what; /* names the file in errors */
    char *buf;        /* unescaped strings land here */
    size_t cap;
} cl_jscan;

void cl_jscan_init(cl_jscan *s, const char *what, const char *text, size_t len);
void cl_jscan_free(cl_jscan *s);

/* The next significant character (whitespace skipped), or -1 at the end. */
int cl_jscan_peek(cl_jscan *s);
/* Consumes the character c (after whitespace) or fails. */
int cl_jscan_expect(cl_jscan *s, char c);
/* Inside an object or array whose opening bracket was consumed: sets *more to 1
 * if another element follows (consuming the ',' between elements), or to 0 after
 * consuming the closing bracket `close`. *first must start at 1. */
int cl_jscan_more(cl_jscan *s, char close, int *first, int *more);
/* Reads a string. *str points into the text (no escapes) or into s->buf (valid
 * until the next string); it is not NUL-terminated unless copied. */
int cl_jscan_string(cl_jscan *s, const char **str, size_t *len);
/* Reads an integer in int64 range (no fraction or exponent). */
int cl_jscan_int(cl_jscan *s, int64_t *v);
/* Skips one value of any type, checking it. */
int cl_jscan_skip(cl_jscan *s);
/* Skips one value and returns the span of its text (for cJSON_ParseWithLength). */
int cl_jscan_span(cl_jscan *s, const char **start, size_t *len);
/* Records "<what>: malformed JSON at line L, column C[: detail]" at the current spot. */
int cl_jscan_error(cl_jscan *s, const char *detail);

#endif
