/* textstream.h - token ids -> text as it is generated: holds back incomplete UTF-8
 * characters and any tail that could still become a stop string, stops (and cuts
 * the text) when a stop string appears. The text it prints is exactly the decoded
 * bytes of the emitted ids, minus a final EOS token and anything from a stop
 * string on. */
#ifndef CL_TEXTSTREAM_H
#define CL_TEXTSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tokenizer/bpe.h"

typedef struct {
    const cl_tokenizer *tok;
    FILE *out;            /* NULL: collect only */
    const char *const *stop;
    int n_stop;
    const int64_t *eos;   /* ids not printed when they end the output */
    int n_eos;
    char *text;           /* decoded text so far (NUL-terminated) */
    size_t len, cap;
    size_t printed;       /* bytes of text already written to out */
    int stopped;          /* a stop string matched */
} cl_textstream;

void cl_textstream_init(cl_textstream *ts, const cl_tokenizer *tok, FILE *out,
                        const char *const *stop, int n_stop, const int64_t *eos, int n_eos);
/* Adds one id; returns 1 when generation should stop (stop string), 0 otherwise,
 * or a negative status on error (unknown id: the message is set). */
int cl_textstream_push(cl_textstream *ts, int32_t id);
/* Writes whatever is still held back (the text is final). */
void cl_textstream_finish(cl_textstream *ts);
void cl_textstream_free(cl_textstream *ts);

#endif
