#include "tokenizer/pretok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

const char cl_pretok_qwen2_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char cl_pretok_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct cl_pretok {
    pcre2_code *code;
    int jit; /* compiled to machine code */
};

/* Rewrites Oniguruma escapes whose PCRE2 meaning differs (see pretok.h). Escaped
 * pairs are copied whole, so "\\s" (a backslash then 's') is left alone. */
static char *translate(const char *pat)
{
    static const char ws[] = "\\p{White_Space}", nws[] = "\\P{White_Space}";
    size_t n = strlen(pat);
    char *out = malloc(n * (sizeof ws) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (pat[i] == '\\' && i + 1 < n) {
            if (pat[i + 1] == 's' || pat[i + 1] == 'S') {
                const char *r = pat[i + 1] == 's' ? ws : nws;
                memcpy(out + o, r, sizeof ws - 1);
                o += sizeof ws - 1;
            } else {
                out[o++] = pat[i];
                out[o++] = pat[i + 1];
            }
            i++;
            continue;
        }
        out[o++] = pat[i];
    }
    out[o] = 0;
    return out;
}

int cl_pretok_create(const char *pattern, const char *what, cl_pretok **out)
{
    char *pat = translate(pattern);
    if (!pat)
        return cl_err(CL_ERR_NOMEM, "out of memory (regex)");
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP, &errcode, &erroff, NULL);
    free(pat);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return cl_err(CL_ERR_FORMAT, "%s: bad regex at offset %zu: %s", what, (size_t)erroff,
                      (const char *)msg);
    }
    /* JIT makes matching several times faster; without it pcre2_match interprets. */
    int jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    cl_pretok *p = calloc(1, sizeof *p);
    if (!p) {
        pcre2_code_free(code);
        return cl_err(CL_ERR_NOMEM, "out of memory (regex)");
    }
    p->code = code;
    p->jit = jit;
    *out = p;
    return CL_OK;
}

void cl_pretok_free(cl_pretok *p)
{
    if (!p)
        return;
    pcre2_code_free(p->code);
    free(p);
}

/* Next code point boundary after i (text is valid UTF-8). */
static size_t next_char(const char *text, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80)
        i++;
    return i;
}

int cl_pretok_split(const cl_pretok *p, const char *text, size_t len, cl_pretok_fn fn,
                    void *ctx)
{
    if (len == 0)
        return CL_OK;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return cl_err(CL_ERR_NOMEM, "out of memory (regex)");
    int rc = CL_OK;
    size_t pos = 0, gap = 0; /* gap: start of text not yet given to fn */
    while (pos < len) {
        /* The text was validated once by the caller: checking it again on every
         * call would make the split quadratic. pcre2_jit_match never checks and
         * skips pcre2_match's other per-call work. */
        int m = p->jit ? pcre2_jit_match(p->code, (PCRE2_SPTR)text, len, pos, 0, md, NULL)
                       : pcre2_match(p->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md,
                                     NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = cl_err(CL_ERR_INTERNAL, "pre-tokenizer regex failed: %s", (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (s < gap || e < s || e > len) { /* \K in a lookaround can report such a match */
            rc = cl_err(CL_ERR_UNSUPPORTED, "pre-tokenizer regex: a match outside the text "
                        "(\\K in a lookaround?) is not supported");
            break;
        }
        if (e == s) { /* an empty match cuts nothing: look again one character on */
            pos = next_char(text, len, s);
            continue;
        }
        if (s > gap && (rc = fn(ctx, text + gap, s - gap)) != CL_OK)
            break;
        if ((rc = fn(ctx, text + s, e - s)) != CL_OK)
            break;
        pos = gap = e;
    }
    if (rc == CL_OK && gap < len)
        rc = fn(ctx, text + gap, len - gap);
    pcre2_match_data_free(md);
    return rc;
}
