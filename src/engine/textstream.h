/* textstream.h - token ids -> text as it is generated (public API in collage.h:
 * cl_textstream_*): holds back incomplete UTF-8 characters and any tail that could
 * still become a stop string, stops (and cuts the text) when a stop string appears.
 * The text is exactly the decoded bytes of the emitted ids, minus a final EOS token
 * and anything from a stop string on. The stream copies its stop strings and ids. */
#ifndef CL_TEXTSTREAM_H
#define CL_TEXTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "collage.h"

struct cl_textstream {
    const cl_tokenizer *tok;
    char **stop;          /* owned copies */
    int n_stop;
    int64_t *eos;         /* ids not part of the text when they end the output */
    int n_eos;
    char *text;           /* decoded text so far (NUL-terminated) */
    size_t len, cap;
    size_t released;      /* bytes of text already handed out as deltas */
    int stopped;          /* a stop string matched */
};

#endif
