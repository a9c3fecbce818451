#include "engine/textstream.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

void cl_textstream_init(cl_textstream *ts, const cl_tokenizer *tok, FILE *out,
                        const char *const *stop, int n_stop, const int64_t *eos, int n_eos)
{
    memset(ts, 0, sizeof *ts);
    ts->tok = tok;
    ts->out = out;
    ts->stop = stop;
    ts->n_stop = n_stop;
    ts->eos = eos;
    ts->n_eos = n_eos;
}

void cl_textstream_free(cl_textstream *ts)
{
    free(ts->text);
    ts->text = NULL;
    ts->len = ts->cap = 0;
}

/* Length of the longest prefix of text[0..len) that ends on a UTF-8 character
 * boundary (an incomplete trailing sequence is held back). */
static size_t complete_utf8(const char *s, size_t len)
{
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return back + 1 >= need ? len : i - 1;
}

static void emit(cl_textstream *ts, size_t upto)
{
    if (upto > ts->printed && ts->out) {
        fwrite(ts->text + ts->printed, 1, upto - ts->printed, ts->out);
        fflush(ts->out);
    }
    if (upto > ts->printed)
        ts->printed = upto;
}

static int is_eos(const cl_textstream *ts, int32_t id)
{
    for (int i = 0; i < ts->n_eos; i++)
        if (ts->eos[i] == id)
            return 1;
    return 0;
}

int cl_textstream_push(cl_textstream *ts, int32_t id)
{
    if (ts->stopped)
        return 1;
    if (is_eos(ts, id))
        return 0; /* the caller stops on EOS; its text is not printed */
    const char *b;
    size_t n;
    int rc = cl_tokenizer_token_bytes(ts->tok, id, &b, &n);
    if (rc != CL_OK)
        return -rc;
    if (ts->len + n + 1 > ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        while (cap < ts->len + n + 1)
            cap *= 2;
        char *nt = realloc(ts->text, cap);
        if (!nt)
            return -cl_err(CL_ERR_NOMEM, "out of memory");
        ts->text = nt;
        ts->cap = cap;
    }
    memcpy(ts->text + ts->len, b, n);
    ts->len += n;
    ts->text[ts->len] = 0;
    /* a stop string anywhere in the unprinted tail (it may start in printed text
     * only if it was held back, so searching from `printed` is enough) */
    for (int i = 0; i < ts->n_stop; i++) {
        char *hit = strstr(ts->text + ts->printed, ts->stop[i]);
        if (hit) {
            ts->len = (size_t)(hit - ts->text);
            ts->text[ts->len] = 0;
            emit(ts, ts->len);
            ts->stopped = 1;
            return 1;
        }
    }
    /* hold back a tail that is a proper prefix of a stop string */
    size_t safe = complete_utf8(ts->text, ts->len);
    for (int i = 0; i < ts->n_stop; i++) {
        size_t sl = strlen(ts->stop[i]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > 0; k--) {
            if (k <= ts->len && !memcmp(ts->text + ts->len - k, ts->stop[i], k)) {
                if (ts->len - k < safe)
                    safe = ts->len - k;
                break;
            }
        }
    }
    emit(ts, safe);
    return 0;
}

void cl_textstream_finish(cl_textstream *ts) { emit(ts, ts->len); }
