/* bpe_load.c - reads tokenizer.json into a cl_tokenizer.
 *
 * The file is walked with the jscan pull scanner: model.vocab and model.merges
 * (almost all of the 11 MB) go straight into the tables, the small sections
 * (normalizer, pre_tokenizer, decoder, added_tokens, the model's settings) are
 * handed to cJSON and checked against what this tokenizer implements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "tokenizer/bpe_impl.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/jscan.h"
#include "tokenizer/normalize.h"

/* Ids are array indices: refuse absurd ones instead of allocating for them. */
#define MAX_TOKEN_ID (1 << 24)

typedef struct {
    int32_t id;
    uint32_t off, len;
    int mapped; /* written in the byte-level map (always, in practice) */
} vocab_entry;

typedef struct {
    cl_tokenizer *t;
    const char *path, *text;
    size_t text_len;
    cJSON *top;   /* top-level sections other than "model" */
    cJSON *model; /* model settings other than vocab and merges */
    const char *vocab_at, *merges_at; /* where those two values start */
    vocab_entry *vocab;
    size_t n_vocab, cap_vocab;
    struct lookup_slot {
        int32_t id;
        uint32_t off, len;
    } *slots; /* raw bytes -> id of byte-level vocab tokens */
} loader;

uint64_t cl_tok_hash(const void *p, size_t len) { return XXH3_64bits(p, len); }

/* Reserves n bytes at the end of the byte arena; returns their offset. */
static int arena_reserve(cl_tokenizer *t, size_t n, uint32_t *off)
{
    if (t->bytes_len + n > t->bytes_cap) {
        size_t cap = t->bytes_cap ? t->bytes_cap : 1 << 20;
        while (cap < t->bytes_len + n)
            cap *= 2;
        if (cap > UINT32_MAX)
            return cl_err(CL_ERR_FORMAT, "%s: tokens too large", t->path);
        char *nb = realloc(t->bytes, cap);
        if (!nb)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
        t->bytes = nb;
        t->bytes_cap = cap;
    }
    *off = (uint32_t)t->bytes_len;
    t->bytes_len += n;
    return CL_OK;
}

/* Adds a parsed small section to obj under key (keys may come unescaped from the
 * scanner, so they are copied to a NUL-terminated buffer first). */
static int add_section(loader *L, cJSON *obj, const char *key, size_t keylen,
                       const char *span, size_t n)
{
    char name[128];
    if (keylen >= sizeof name)
        keylen = sizeof name - 1; /* such keys are never ones this loader reads */
    memcpy(name, key, keylen);
    name[keylen] = 0;
    cJSON *v = cJSON_ParseWithLength(span, n);
    if (!v)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    cJSON_AddItemToObject(obj, name, v);
    return CL_OK;
}

static int key_is(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && !memcmp(k, want, n);
}

static int walk_model(loader *L, cl_jscan *s)
{
    if (cl_jscan_peek(s) != '{')
        return cl_jscan_error(s, "'model' must be an object");
    s->p++;
    int first = 1, more;
    for (;;) {
        CL_TRY(cl_jscan_more(s, '}', &first, &more));
        if (!more)
            return CL_OK;
        const char *k, *span;
        size_t kn, n;
        CL_TRY(cl_jscan_string(s, &k, &kn));
        CL_TRY(cl_jscan_expect(s, ':'));
        if (key_is(k, kn, "vocab") || key_is(k, kn, "merges")) {
            const char **at = key_is(k, kn, "vocab") ? &L->vocab_at : &L->merges_at;
            cl_jscan_peek(s);
            *at = s->p;
            CL_TRY(cl_jscan_skip(s)); /* read once the vocab is known (merges need it) */
        } else {
            CL_TRY(cl_jscan_span(s, &span, &n));
            CL_TRY(add_section(L, L->model, k, kn, span, n));
        }
    }
}

static int walk_top(loader *L)
{
    cl_jscan s;
    cl_jscan_init(&s, L->path, L->text, L->text_len);
    int rc = cl_jscan_peek(&s) == '{' ? CL_OK : cl_jscan_error(&s, "expected an object");
    int first = 1, more = 1, have_model = 0;
    if (rc == CL_OK)
        s.p++;
    while (rc == CL_OK) {
        if ((rc = cl_jscan_more(&s, '}', &first, &more)) != CL_OK || !more)
            break;
        const char *k, *span;
        size_t kn, n;
        if ((rc = cl_jscan_string(&s, &k, &kn)) != CL_OK || (rc = cl_jscan_expect(&s, ':')))
            break;
        if (key_is(k, kn, "model")) {
            have_model = 1;
            rc = walk_model(L, &s);
        } else if ((rc = cl_jscan_span(&s, &span, &n)) == CL_OK) {
            rc = add_section(L, L->top, k, kn, span, n);
        }
    }
    if (rc == CL_OK && cl_jscan_peek(&s) != -1)
        rc = cl_jscan_error(&s, "text after the top-level object");
    cl_jscan_free(&s);
    if (rc == CL_OK && !have_model)
        rc = cl_err(CL_ERR_FORMAT, "%s: no 'model' section", L->path);
    return rc;
}

static int read_vocab(loader *L)
{
    cl_tokenizer *t = L->t;
    if (!L->vocab_at)
        return cl_err(CL_ERR_FORMAT, "%s: model.vocab is missing", L->path);
    cl_jscan s;
    cl_jscan_init(&s, L->path, L->text, L->text_len);
    s.p = L->vocab_at;
    int rc = cl_jscan_peek(&s) == '{' ? CL_OK
                                      : cl_jscan_error(&s, "model.vocab must be an object");
    int first = 1, more = 1;
    if (rc == CL_OK)
        s.p++;
    while (rc == CL_OK) {
        if ((rc = cl_jscan_more(&s, '}', &first, &more)) != CL_OK || !more)
            break;
        const char *k;
        size_t kn;
        int64_t id;
        uint32_t off;
        if ((rc = cl_jscan_string(&s, &k, &kn)) || (rc = cl_jscan_expect(&s, ':')) ||
            (rc = cl_jscan_int(&s, &id)) || (rc = arena_reserve(t, kn, &off)))
            break;
        if (id < 0 || id >= MAX_TOKEN_ID) {
            rc = cl_err(CL_ERR_FORMAT, "%s: model.vocab: id %lld out of range", L->path,
                        (long long)id);
            break;
        }
        long raw = cl_bytelevel_decode(k, kn, (uint8_t *)t->bytes + off);
        int mapped = raw >= 0;
        if (!mapped) /* not a byte-level string: keep its text (as HF's decoder does) */
            memcpy(t->bytes + off, k, kn);
        uint32_t len = mapped ? (uint32_t)raw : (uint32_t)kn;
        t->bytes_len = off + len;
        if (L->n_vocab == L->cap_vocab) {
            size_t cap = L->cap_vocab ? L->cap_vocab * 2 : 4096;
            vocab_entry *nv = realloc(L->vocab, cap * sizeof *nv);
            if (!nv) {
                rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
                break;
            }
            L->vocab = nv;
            L->cap_vocab = cap;
        }
        L->vocab[L->n_vocab++] = (vocab_entry){(int32_t)id, off, len, mapped};
        if (id >= t->n_ids)
            t->n_ids = (int32_t)id + 1;
    }
    cl_jscan_free(&s);
    return rc;
}

static uint64_t table_size(size_t n)
{
    uint64_t size = 1024;
    while (size < n + n / 2 + 1)
        size *= 2;
    return size;
}

int32_t cl_tok_lookup(const cl_tokenizer *t, const char *raw, size_t len)
{
    const struct lookup_slot *slots = (const void *)t->lookup;
    for (uint64_t i = cl_tok_hash(raw, len) & t->lookup_mask;; i = (i + 1) & t->lookup_mask) {
        const struct lookup_slot *sl = &slots[i];
        if (sl->id < 0)
            return -1;
        if (sl->len == len && !memcmp(t->bytes + sl->off, raw, len))
            return sl->id;
    }
}

static int build_lookup(loader *L)
{
    cl_tokenizer *t = L->t;
    uint64_t size = table_size(L->n_vocab);
    struct lookup_slot *slots = malloc(size * sizeof *slots);
    if (!slots)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    for (uint64_t i = 0; i < size; i++)
        slots[i].id = -1;
    t->lookup = (int32_t *)slots;
    t->lookup_mask = size - 1;
    for (size_t v = 0; v < L->n_vocab; v++) {
        const vocab_entry *e = &L->vocab[v];
        if (!e->mapped)
            continue; /* BPE never builds such a token from bytes */
        uint64_t i = cl_tok_hash(t->bytes + e->off, e->len) & t->lookup_mask;
        while (slots[i].id >= 0) {
            if (slots[i].len == e->len && !memcmp(t->bytes + slots[i].off, t->bytes + e->off,
                                                   e->len))
                break; /* two ids with one string: the first stays */
            i = (i + 1) & t->lookup_mask;
        }
        if (slots[i].id < 0)
            slots[i] = (struct lookup_slot){e->id, e->off, e->len};
    }
    return CL_OK;
}

static int cmp_added_len(const void *a, const void *b)
{
    const cl_added_token *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* added_tokens: [{id, content, special, normalized, lstrip, rstrip, single_word}]. */
static int read_added(loader *L)
{
    cl_tokenizer *t = L->t;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(L->top, "added_tokens");
    if (!arr || cJSON_IsNull(arr))
        return CL_OK;
    if (!cJSON_IsArray(arr))
        return cl_err(CL_ERR_FORMAT, "%s: key 'added_tokens': expected an array", L->path);
    int n = cJSON_GetArraySize(arr);
    t->added_raw = calloc((size_t)n + 1, sizeof *t->added_raw);
    t->added_norm = calloc((size_t)n + 1, sizeof *t->added_norm);
    if (!t->added_raw || !t->added_norm)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    char what[4200];
    int i = 0;
    for (const cJSON *a = arr->child; a; a = a->next, i++) {
        snprintf(what, sizeof what, "%s: added_tokens[%d]", L->path, i);
        int64_t id;
        const char *content;
        int special, normalized, lstrip, rstrip, single_word;
        if (!cJSON_IsObject(a))
            return cl_err(CL_ERR_FORMAT, "%s: expected an object", what);
        CL_TRY(cl_json_int(a, "id", what, -1, &id));
        CL_TRY(cl_json_str(a, "content", what, NULL, &content));
        CL_TRY(cl_json_bool(a, "special", what, 0, &special));
        CL_TRY(cl_json_bool(a, "normalized", what, !special, &normalized));
        CL_TRY(cl_json_bool(a, "lstrip", what, 0, &lstrip));
        CL_TRY(cl_json_bool(a, "rstrip", what, 0, &rstrip));
        CL_TRY(cl_json_bool(a, "single_word", what, 0, &single_word));
        if (id < 0 || id >= MAX_TOKEN_ID)
            return cl_err(CL_ERR_FORMAT, "%s: key 'id': missing or out of range", what);
        if (!content || !content[0])
            return cl_err(CL_ERR_FORMAT, "%s: key 'content': missing or empty", what);
        if (lstrip || rstrip || single_word)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: lstrip/rstrip/single_word added tokens are not yet supported",
                          what);
        size_t len = strlen(content);
        if (cl_utf8_invalid_at(content, len) != len)
            return cl_err(CL_ERR_FORMAT, "%s: key 'content': invalid UTF-8", what);
        /* A normalized token is matched in normalized text, so normalize it too. */
        const char *norm = content;
        size_t nlen = len;
        int owned = 0;
        if (normalized && t->nfc)
            CL_TRY(cl_nfc(content, len, &norm, &nlen, &owned));
        uint32_t off;
        int rc = arena_reserve(t, nlen, &off);
        if (rc == CL_OK)
            memcpy(t->bytes + off, norm, nlen);
        if (owned)
            free((void *)norm);
        CL_TRY(rc);
        cl_added_token tok = {(int32_t)id, off, (uint32_t)nlen, special};
        if (normalized)
            t->added_norm[t->n_added_norm++] = tok;
        else
            t->added_raw[t->n_added_raw++] = tok;
        if (id >= t->n_ids)
            t->n_ids = (int32_t)id + 1;
    }
    qsort(t->added_raw, t->n_added_raw, sizeof *t->added_raw, cmp_added_len);
    qsort(t->added_norm, t->n_added_norm, sizeof *t->added_norm, cmp_added_len);
    return CL_OK;
}

/* Fills the per-id arrays: vocab tokens, then added tokens over them (an added
 * token decodes to its literal text, as HF's added vocabulary takes precedence). */
static int build_ids(loader *L)
{
    cl_tokenizer *t = L->t;
    size_t n = (size_t)t->n_ids;
    t->tok_off = calloc(n ? n : 1, sizeof *t->tok_off);
    t->tok_len = calloc(n ? n : 1, sizeof *t->tok_len);
    t->tok_flags = calloc(n ? n : 1, 1);
    if (!t->tok_off || !t->tok_len || !t->tok_flags)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    for (size_t v = 0; v < L->n_vocab; v++) {
        const vocab_entry *e = &L->vocab[v];
        if (t->tok_flags[e->id])
            return cl_err(CL_ERR_FORMAT, "%s: model.vocab: id %d appears twice", L->path, e->id);
        t->tok_off[e->id] = e->off;
        t->tok_len[e->id] = e->len;
        t->tok_flags[e->id] = CL_TOK_PRESENT | (e->mapped ? CL_TOK_MAPPED : 0);
    }
    for (int list = 0; list < 2; list++) {
        const cl_added_token *a = list ? t->added_norm : t->added_raw;
        size_t na = list ? t->n_added_norm : t->n_added_raw;
        for (size_t i = 0; i < na; i++) {
            if (t->tok_flags[a[i].id] & CL_TOK_ADDED)
                return cl_err(CL_ERR_FORMAT, "%s: added_tokens: id %d appears twice", L->path,
                              a[i].id);
            t->tok_off[a[i].id] = a[i].off;
            t->tok_len[a[i].id] = a[i].len;
            t->tok_flags[a[i].id] =
                CL_TOK_PRESENT | CL_TOK_ADDED | (a[i].special ? CL_TOK_SPECIAL : 0);
            uint8_t *first = list ? t->first_norm : t->first_raw;
            first[(uint8_t)t->bytes[a[i].off]] = 1;
        }
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = cl_tok_lookup(t, &c, 1);
        if (t->byte_id[b] < 0)
            return cl_err(CL_ERR_FORMAT,
                          "%s: model.vocab has no token for byte 0x%02X (byte-level BPE needs "
                          "all 256)",
                          L->path, b);
    }
    return CL_OK;
}

/* One side of a merge, mapped form -> id. *skip is set when it is not a byte-level
 * string: such a merge can never apply (BPE only meets byte-level tokens). */
static int merge_part(loader *L, const char *s, size_t n, size_t rank, uint8_t *raw,
                      size_t *raw_len, int32_t *id, int *skip)
{
    long r = cl_bytelevel_decode(s, n, raw);
    if (r < 0) {
        *skip = 1;
        return CL_OK;
    }
    *raw_len = (size_t)r;
    *id = cl_tok_lookup(L->t, (const char *)raw, (size_t)r);
    if (*id < 0)
        return cl_err(CL_ERR_FORMAT, "%s: model.merges[%zu]: '%.*s' is not in model.vocab",
                      L->path, rank, (int)(n > 64 ? 64 : n), s);
    return CL_OK;
}

static int add_merge(loader *L, size_t rank, const char *a, size_t an, const char *b,
                     size_t bn, uint8_t **scratch, size_t *scratch_cap)
{
    cl_tokenizer *t = L->t;
    if (an + bn > *scratch_cap) {
        size_t cap = (an + bn) * 2;
        uint8_t *nb = realloc(*scratch, cap);
        if (!nb)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
        *scratch = nb;
        *scratch_cap = cap;
    }
    uint8_t *raw = *scratch;
    size_t la, lb;
    int32_t ia, ib;
    int skip = 0;
    CL_TRY(merge_part(L, a, an, rank, raw, &la, &ia, &skip));
    if (skip)
        return CL_OK;
    CL_TRY(merge_part(L, b, bn, rank, raw + la, &lb, &ib, &skip));
    if (skip)
        return CL_OK;
    int32_t merged = cl_tok_lookup(t, (const char *)raw, la + lb);
    if (merged < 0)
        return cl_err(CL_ERR_FORMAT,
                      "%s: model.merges[%zu]: the merged token '%.*s%.*s' is not in model.vocab",
                      L->path, rank, (int)(an > 64 ? 64 : an), a, (int)(bn > 64 ? 64 : bn), b);
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    uint64_t i = cl_merge_hash(key) & t->merge_mask;
    while (t->merges[i].key != CL_MERGE_EMPTY && t->merges[i].key != key)
        i = (i + 1) & t->merge_mask;
    if (t->merges[i].key == CL_MERGE_EMPTY)
        t->n_merges++;
    /* A pair listed twice keeps its last rank, as HF's merge map does. */
    t->merges[i] = (cl_merge_slot){key, (int32_t)rank, merged};
    return CL_OK;
}

/* model.merges: ["a b", ...] (older files) or [["a", "b"], ...]; rank = index. */
static int read_merges(loader *L)
{
    cl_tokenizer *t = L->t;
    cl_jscan s;
    cl_jscan_init(&s, L->path, L->text, L->text_len);
    size_t count = 0;
    if (L->merges_at) { /* count first, to size the table once */
        s.p = L->merges_at;
        if (cl_jscan_peek(&s) != '[')
            return cl_jscan_error(&s, "model.merges must be an array");
        size_t strings = 0, pairs = 0;
        int in_str = 0, depth = 0;
        for (const char *q = s.p; q < s.end; q++) {
            if (in_str) {
                if (*q == '\\')
                    q++;
                else if (*q == '"')
                    in_str = 0;
            } else if (*q == '"') {
                in_str = 1;
                strings++;
            } else if (*q == '[') {
                pairs += ++depth == 2;
            } else if (*q == ']' && --depth == 0) {
                break;
            }
        }
        count = pairs ? pairs : strings;
    }
    uint64_t size = table_size(count);
    t->merges = malloc(size * sizeof *t->merges);
    if (!t->merges)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    for (uint64_t i = 0; i < size; i++)
        t->merges[i].key = CL_MERGE_EMPTY;
    t->merge_mask = size - 1;
    if (!L->merges_at)
        return CL_OK;
    s.p++;
    uint8_t *scratch = NULL;
    size_t scratch_cap = 0, rank = 0;
    char *first_copy = NULL;
    int rc = CL_OK, first = 1, more = 1;
    while (rc == CL_OK) {
        if ((rc = cl_jscan_more(&s, ']', &first, &more)) != CL_OK || !more)
            break;
        const char *a, *b;
        size_t an, bn;
        int c = cl_jscan_peek(&s);
        if (c == '"') {
            if ((rc = cl_jscan_string(&s, &a, &an)))
                break;
            const char *sp = memchr(a, ' ', an);
            if (!sp || memchr(sp + 1, ' ', an - (size_t)(sp + 1 - a))) {
                rc = cl_err(CL_ERR_FORMAT, "%s: model.merges[%zu]: expected \"left right\"",
                            L->path, rank);
                break;
            }
            rc = add_merge(L, rank, a, (size_t)(sp - a), sp + 1, an - (size_t)(sp + 1 - a),
                           &scratch, &scratch_cap);
        } else if (c == '[') {
            s.p++;
            /* The first string may sit in the scanner's buffer, which the second
             * string reuses: copy it out when it was unescaped. */
            if ((rc = cl_jscan_string(&s, &a, &an)))
                break;
            if (a == s.buf) {
                free(first_copy);
                first_copy = malloc(an + 1);
                if (!first_copy) {
                    rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
                    break;
                }
                memcpy(first_copy, a, an);
                a = first_copy;
            }
            if ((rc = cl_jscan_expect(&s, ',')) || (rc = cl_jscan_string(&s, &b, &bn)) ||
                (rc = cl_jscan_expect(&s, ']')))
                break;
            rc = add_merge(L, rank, a, an, b, bn, &scratch, &scratch_cap);
        } else {
            rc = cl_jscan_error(&s, "model.merges: expected a string or a pair");
        }
        rank++;
    }
    free(first_copy);
    free(scratch);
    cl_jscan_free(&s);
    return rc;
}

/* ---- the small sections: refuse what this tokenizer does not implement ---- */

static const char *type_of(const cJSON *o)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static int unsupported(loader *L, const char *key, const char *type)
{
    return cl_err(CL_ERR_UNSUPPORTED, "%s: %s type '%s' is not yet supported", L->path, key,
                  type ? type : "(none)");
}

static int setup_normalizer(loader *L)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(L->top, "normalizer");
    if (!n || cJSON_IsNull(n))
        return CL_OK;
    const char *ty = type_of(n);
    if (ty && !strcmp(ty, "NFC")) {
        L->t->nfc = 1;
        return CL_OK;
    }
    if (ty && !strcmp(ty, "Sequence")) { /* a sequence of NFCs is still NFC */
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        for (const cJSON *e = cJSON_IsArray(seq) ? seq->child : NULL; e; e = e->next) {
            const char *et = type_of(e);
            if (!et || strcmp(et, "NFC"))
                return unsupported(L, "normalizer", et);
            L->t->nfc = 1;
        }
        return CL_OK;
    }
    return unsupported(L, "normalizer", ty);
}

static int add_pretok(loader *L, const char *pattern)
{
    cl_tokenizer *t = L->t;
    if (t->n_pretok == CL_MAX_PRETOK)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: pre_tokenizer: more than %d Split steps",
                      L->path, CL_MAX_PRETOK);
    char what[4200];
    snprintf(what, sizeof what, "%s: pre_tokenizer", L->path);
    return cl_pretok_create(pattern, what, &t->pretok[t->n_pretok++]);
}

/* One step: Split (regex, Isolated) or ByteLevel (which must come last). */
static int setup_pretok_step(loader *L, const cJSON *p, int last, int *have_bytelevel)
{
    const char *ty = type_of(p);
    char what[64];
    snprintf(what, sizeof what, "pre_tokenizer");
    if (ty && !strcmp(ty, "ByteLevel")) {
        int prefix, use_regex;
        CL_TRY(cl_json_bool(p, "add_prefix_space", L->path, 0, &prefix));
        CL_TRY(cl_json_bool(p, "use_regex", L->path, 1, &use_regex));
        if (prefix)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: ByteLevel add_prefix_space is not yet supported",
                          L->path);
        if (!last)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: steps after ByteLevel are not yet supported",
                          L->path);
        *have_bytelevel = 1;
        return use_regex ? add_pretok(L, cl_pretok_gpt2_pattern) : CL_OK;
    }
    if (ty && !strcmp(ty, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const char *behavior;
        int invert;
        CL_TRY(cl_json_str(p, "behavior", L->path, "", &behavior));
        CL_TRY(cl_json_bool(p, "invert", L->path, 0, &invert));
        if (!cJSON_IsString(re))
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: Split without a 'Regex' pattern is not yet "
                          "supported",
                          L->path);
        if (strcmp(behavior, "Isolated") || invert)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: Split behavior '%s'%s is not yet supported",
                          L->path, behavior, invert ? " (inverted)" : "");
        return add_pretok(L, re->valuestring);
    }
    return unsupported(L, what, ty);
}

static int setup_pretok(loader *L)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(L->top, "pre_tokenizer");
    int have_bytelevel = 0;
    const char *ty = p ? type_of(p) : NULL;
    if (ty && !strcmp(ty, "Sequence")) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        for (const cJSON *e = cJSON_IsArray(seq) ? seq->child : NULL; e; e = e->next)
            CL_TRY(setup_pretok_step(L, e, e->next == NULL, &have_bytelevel));
    } else if (p && !cJSON_IsNull(p)) {
        CL_TRY(setup_pretok_step(L, p, 1, &have_bytelevel));
    }
    if (!have_bytelevel)
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: pre_tokenizer has no ByteLevel step: only byte-level BPE is "
                      "supported yet",
                      L->path);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(L->top, "decoder");
    const char *dt = d ? type_of(d) : NULL;
    if (!dt || strcmp(dt, "ByteLevel"))
        return unsupported(L, "decoder", dt);
    return CL_OK;
}

static int setup_model(loader *L)
{
    const cJSON *m = L->model;
    const char *ty, *prefix, *suffix;
    double dropout;
    CL_TRY(cl_json_str(m, "type", L->path, "BPE", &ty));
    if (strcmp(ty, "BPE"))
        return unsupported(L, "model", ty);
    CL_TRY(cl_json_num(m, "dropout", L->path, 0, &dropout));
    CL_TRY(cl_json_str(m, "continuing_subword_prefix", L->path, "", &prefix));
    CL_TRY(cl_json_str(m, "end_of_word_suffix", L->path, "", &suffix));
    CL_TRY(cl_json_bool(m, "ignore_merges", L->path, 0, &L->t->ignore_merges));
    if (dropout != 0)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: model.dropout is not yet supported", L->path);
    if (prefix[0] || suffix[0])
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: model.continuing_subword_prefix/end_of_word_suffix are not yet "
                      "supported",
                      L->path);
    /* unk_token, fuse_unk and byte_fallback never act: every byte has a token. */
    return CL_OK;
}

int cl_tokenizer_load(const char *path, cl_tokenizer **out)
{
    *out = NULL;
    loader L = {0};
    L.path = path;
    char *text = NULL;
    int rc = cl_read_file(path, &text, &L.text_len);
    if (rc != CL_OK)
        return rc;
    L.text = text;
    cl_tokenizer *t = calloc(1, sizeof *t);
    L.t = t;
    L.top = cJSON_CreateObject();
    L.model = cJSON_CreateObject();
    if (!t || !L.top || !L.model || !(t->path = strdup(path))) {
        rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", path);
    } else {
        pthread_mutex_init(&t->cache_lock, NULL);
        if ((rc = walk_top(&L)) == CL_OK && (rc = setup_model(&L)) == CL_OK &&
            (rc = setup_normalizer(&L)) == CL_OK && (rc = setup_pretok(&L)) == CL_OK &&
            (rc = read_vocab(&L)) == CL_OK && (rc = read_added(&L)) == CL_OK &&
            (rc = build_lookup(&L)) == CL_OK && (rc = build_ids(&L)) == CL_OK &&
            (rc = read_merges(&L)) == CL_OK)
            rc = cl_word_cache_create(&t->cache);
    }
    cJSON_Delete(L.top);
    cJSON_Delete(L.model);
    free(L.vocab);
    free(text);
    if (rc != CL_OK) {
        if (t && t->path)
            cl_tokenizer_free(t);
        else
            free(t);
        return rc;
    }
    *out = t;
    return CL_OK;
}

int cl_tokenizer_load_dir(const char *model_dir, cl_tokenizer **out)
{
    char path[4096];
    *out = NULL;
    CL_TRY(cl_path_join(path, sizeof path, model_dir, "tokenizer.json"));
    return cl_tokenizer_load(path, out);
}

void cl_tokenizer_free(cl_tokenizer *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_pretok; i++)
        cl_pretok_free(t->pretok[i]);
    cl_word_cache_free(t->cache);
    pthread_mutex_destroy(&t->cache_lock);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_flags);
    free(t->bytes);
    free(t->merges);
    free(t->lookup);
    free(t->added_raw);
    free(t->added_norm);
    free(t->path);
    free(t);
}
