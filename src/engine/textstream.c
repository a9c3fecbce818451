#include "engine/textstream.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

int cl_textstream_create(const cl_tokenizer *tok, const char *const *stop, int n_stop,
                         const int64_t *eos, int n_eos, cl_textstream **out)
{
    if (!tok || n_stop < 0 || n_eos < 0 || (n_stop && !stop) || (n_eos && !eos))
        return cl_err(CL_ERR_ARG, "text stream: bad arguments");
    cl_textstream *ts = calloc(1, sizeof *ts);
    if (!ts)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    ts->tok = tok;
    ts->stop = n_stop ? calloc((size_t)n_stop, sizeof *ts->stop) : NULL;
    ts->eos = n_eos ? malloc((size_t)n_eos * sizeof *ts->eos) : NULL;
    int rc = (n_stop && !ts->stop) || (n_eos && !ts->eos) ? CL_ERR_NOMEM : CL_OK;
    for (int i = 0; i < n_stop && rc == CL_OK; i++) {
        if (!stop[i] || !*stop[i])
            rc = cl_err(CL_ERR_ARG, "stop strings must not be empty");
        else if (!(ts->stop[ts->n_stop++] = strdup(stop[i])))
            rc = CL_ERR_NOMEM;
    }
    if (rc == CL_OK && n_eos) {
        memcpy(ts->eos, eos, (size_t)n_eos * sizeof *ts->eos);
        ts->n_eos = n_eos;
    }
    if (rc != CL_OK) {
        cl_textstream_free(ts);
        return rc == CL_ERR_NOMEM ? cl_err(CL_ERR_NOMEM, "out of memory") : rc;
    }
    *out = ts;
    return CL_OK;
}

void cl_textstream_free(cl_textstream *ts)
{
    if (!ts)
        return;
    for (int i = 0; i < ts->n_stop; i++)
        free(ts->stop[i]);
    free(ts->stop);
    free(ts->eos);
    free(ts->text);
    free(ts);
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

/* Hands out text[released..upto) as the delta. */
static void release(cl_textstream *ts, size_t upto, const char **delta, size_t *n_delta)
{
    *delta = ts->text ? ts->text + ts->released : "";
    *n_delta = upto > ts->released ? upto - ts->released : 0;
    if (upto > ts->released)
        ts->released = upto;
}

static int is_eos(const cl_textstream *ts, int32_t id)
{
    for (int i = 0; i < ts->n_eos; i++)
        if (ts->eos[i] == id)
            return 1;
    return 0;
}

int cl_textstream_push(cl_textstream *ts, int32_t id, const char **delta, size_t *n_delta)
{
    *delta = "";
    *n_delta = 0;
    if (ts->stopped)
        return 1;
    if (is_eos(ts, id))
        return 0; /* the caller stops on EOS; its text is not part of the output */
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
    /* a stop string anywhere in the unreleased tail (it may start in released text
     * only if it was held back, so searching from `released` is enough) */
    for (int i = 0; i < ts->n_stop; i++) {
        char *hit = strstr(ts->text + ts->released, ts->stop[i]);
        if (hit) {
            ts->len = (size_t)(hit - ts->text);
            ts->text[ts->len] = 0;
            release(ts, ts->len, delta, n_delta);
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
    release(ts, safe, delta, n_delta);
    return 0;
}

void cl_textstream_finish(cl_textstream *ts, const char **delta, size_t *n_delta)
{
    release(ts, ts->len, delta, n_delta);
}

const char *cl_textstream_text(const cl_textstream *ts, size_t *len)
{
    if (len)
        *len = ts->len;
    return ts->text ? ts->text : "";
}

int cl_textstream_stopped(const cl_textstream *ts) { return ts->stopped; }
