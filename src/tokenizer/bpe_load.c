/* bpe_load.c - reads tokenizer.json into a cl_tokenizer in one pass.
 *
 * The file is walked with the jscan pull scanner: model.vocab and model.merges
 * (almost all of the 11 MB) go straight into the tables as they are met, the small
 * sections (normalizer, pre_tokenizer, decoder, added_tokens, the model's
 * settings) are handed to cJSON and checked by bpe_config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "tokenizer/bpe_impl.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/jscan.h"
#include "tokenizer/normalize.h"

/* Ids are array indices: refuse absurd ones instead of allocating for them. */
#define MAX_TOKEN_ID (1 << 24)

/* raw bytes -> id of a byte-level vocab token; tag = high hash bits, to skip
 * most byte comparisons; id -1 = free. */
typedef struct {
    int32_t id;
    uint32_t tag, off, len;
} lookup_slot;

typedef struct {
    cl_tokenizer *t;
    const char *path, *text;
    size_t text_len;
    cJSON *top;   /* top-level sections other than "model" */
    cJSON *model; /* model settings other than vocab and merges */
    int skip_model_tables; /* the model is not BPE: its tables are not read */
    int have_vocab;
    const char *merges_at; /* merges met before the vocab: read afterwards */
    int32_t n_vocab_ids;   /* 1 + highest vocab id */
    size_t n_vocab;
} loader;

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

/* Grows the per-id arrays to n ids (new ids have no token yet). */
static int grow_ids(cl_tokenizer *t, int32_t n)
{
    if (n <= t->n_ids)
        return CL_OK;
    uint32_t *off = realloc(t->tok_off, (size_t)n * sizeof *off);
    if (off)
        t->tok_off = off;
    uint32_t *len = realloc(t->tok_len, (size_t)n * sizeof *len);
    if (len)
        t->tok_len = len;
    uint8_t *flags = realloc(t->tok_flags, (size_t)n);
    if (flags)
        t->tok_flags = flags;
    if (!off || !len || !flags)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
    memset(t->tok_flags + t->n_ids, 0, (size_t)(n - t->n_ids));
    t->n_ids = n;
    return CL_OK;
}

uint64_t cl_tok_table_size(size_t n)
{
    uint64_t size = 1024;
    while (size < n + n / 2 + 1)
        size *= 2;
    return size;
}

int32_t cl_tok_lookup_hashed(const cl_tokenizer *t, const char *raw, size_t len, uint64_t h)
{
    const lookup_slot *slots = t->lookup;
    if (!slots)
        return -1; /* no vocabulary read (yet) */
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & t->lookup_mask;; i = (i + 1) & t->lookup_mask) {
        const lookup_slot *sl = &slots[i];
        if (sl->id < 0)
            return -1;
        if (sl->tag == tag && sl->len == len && cl_tok_equal(t->bytes + sl->off, raw, len))
            return sl->id;
    }
}

int32_t cl_tok_lookup(const cl_tokenizer *t, const char *raw, size_t len)
{
    return cl_tok_lookup_hashed(t, raw, len, cl_tok_hash(raw, len));
}

/* ---- model.vocab ---- */

/* Reads {"token": id, ...} (tokens in the byte-level map) into the per-id arrays,
 * then builds the raw-bytes lookup. */
static int read_vocab(loader *L, cl_jscan *s)
{
    cl_tokenizer *t = L->t;
    if (cl_jscan_peek(s) != '{')
        return cl_jscan_error(s, "model.vocab must be an object");
    s->p++;
    /* (id, offset, length, mapped) per entry, placed once the highest id is known */
    size_t cap = 0;
    struct entry {
        int32_t id;
        uint32_t off, len, mapped;
    } *v = NULL;
    int rc = CL_OK, first = 1, more = 1;
    int32_t n_ids = 0;
    while (rc == CL_OK) {
        if ((rc = cl_jscan_more(s, '}', &first, &more)) != CL_OK || !more)
            break;
        const char *k;
        size_t kn;
        int64_t id;
        uint32_t off;
        if ((rc = cl_jscan_string(s, &k, &kn)) || (rc = cl_jscan_expect(s, ':')) ||
            (rc = cl_jscan_int(s, &id)) || (rc = arena_reserve(t, kn, &off)))
            break;
        if (id < 0 || id >= MAX_TOKEN_ID) {
            rc = cl_err(CL_ERR_FORMAT, "%s: model.vocab: id %lld out of range", L->path,
                        (long long)id);
            break;
        }
        long raw = cl_bytelevel_decode(k, kn, (uint8_t *)t->bytes + off);
        int mapped = raw >= 0;
        if (!mapped) /* not a byte-level string: keep its text, as HF's decoder does */
            memcpy(t->bytes + off, k, kn);
        uint32_t len = mapped ? (uint32_t)raw : (uint32_t)kn;
        t->bytes_len = off + len;
        if (L->n_vocab == cap) {
            cap = cap ? cap * 2 : 1 << 14;
            struct entry *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
                break;
            }
            v = nv;
        }
        v[L->n_vocab++] = (struct entry){(int32_t)id, off, len, (uint32_t)mapped};
        if (id >= n_ids)
            n_ids = (int32_t)id + 1;
    }
    if (rc == CL_OK)
        rc = grow_ids(t, n_ids);
    for (size_t i = 0; rc == CL_OK && i < L->n_vocab; i++) {
        int32_t id = v[i].id;
        if (t->tok_flags[id])
            rc = cl_err(CL_ERR_FORMAT, "%s: model.vocab: id %d appears twice", L->path, id);
        t->tok_off[id] = v[i].off;
        t->tok_len[id] = v[i].len;
        t->tok_flags[id] = CL_TOK_PRESENT | (v[i].mapped ? CL_TOK_MAPPED : 0);
    }
    free(v);
    CL_TRY(rc);
    L->n_vocab_ids = n_ids;
    L->have_vocab = 1;

    uint64_t size = cl_tok_table_size(L->n_vocab);
    lookup_slot *slots = malloc(size * sizeof *slots);
    if (!slots)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    for (uint64_t i = 0; i < size; i++)
        slots[i].id = -1;
    t->lookup = slots;
    t->lookup_mask = size - 1;
    for (int32_t id = 0; id < n_ids; id++) {
        if (!(t->tok_flags[id] & CL_TOK_MAPPED))
            continue; /* absent, or a string BPE never builds from bytes */
        const char *b = t->bytes + t->tok_off[id];
        uint32_t len = t->tok_len[id];
        uint64_t h = cl_tok_hash(b, len);
        uint64_t i = h & t->lookup_mask;
        for (; slots[i].id >= 0; i = (i + 1) & t->lookup_mask)
            if (slots[i].len == len && !memcmp(t->bytes + slots[i].off, b, len))
                break; /* two ids with one string: the lower id stays */
        if (slots[i].id < 0)
            slots[i] = (lookup_slot){id, (uint32_t)(h >> 32), t->tok_off[id], len};
    }
    return CL_OK;
}

/* ---- walking the file ---- */

/* Adds a parsed small section to obj under key (keys may come unescaped from the
 * scanner, so they are copied to a NUL-terminated buffer first). */
static int add_section(loader *L, cJSON *obj, const char *key, size_t keylen, const char *span,
                       size_t n)
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
        int vocab = key_is(k, kn, "vocab"), merges = key_is(k, kn, "merges");
        if ((vocab || merges) && (L->skip_model_tables || (vocab && L->have_vocab))) {
            CL_TRY(cl_jscan_skip(s));
        } else if (vocab) {
            CL_TRY(read_vocab(L, s));
        } else if (merges && L->have_vocab) {
            CL_TRY(cl_bpe_read_merges(L->t, s, L->n_vocab_ids));
        } else if (merges) { /* needs the vocab: read once it is known */
            cl_jscan_peek(s);
            L->merges_at = s->p;
            CL_TRY(cl_jscan_skip(s));
        } else {
            CL_TRY(cl_jscan_span(s, &span, &n));
            int type = key_is(k, kn, "type");
            CL_TRY(add_section(L, L->model, k, kn, span, n));
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(L->model, "type");
            /* Another model's tables have other shapes: leave them to the error. */
            if (type && !(cJSON_IsString(ty) && !strcmp(ty->valuestring, "BPE")))
                L->skip_model_tables = 1;
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
    if (rc == CL_OK && L->merges_at && !L->have_vocab && !L->skip_model_tables)
        rc = cl_err(CL_ERR_FORMAT, "%s: model.vocab is missing (model.merges needs it)",
                    L->path);
    if (rc == CL_OK && L->merges_at && L->have_vocab) {
        s.p = L->merges_at;
        rc = cl_bpe_read_merges(L->t, &s, L->n_vocab_ids);
    }
    cl_jscan_free(&s);
    if (rc == CL_OK && !have_model)
        rc = cl_err(CL_ERR_FORMAT, "%s: no 'model' section", L->path);
    return rc;
}

/* ---- added tokens ---- */

static int cmp_added_len(const void *a, const void *b)
{
    const cl_added_token *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* added_tokens: [{id, content, special, normalized, lstrip, rstrip, single_word}].
 * They override the per-id arrays: an added token decodes to its literal text. */
static int read_added(loader *L)
{
    cl_tokenizer *t = L->t;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(L->top, "added_tokens");
    if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr))
        return cl_err(CL_ERR_FORMAT, "%s: key 'added_tokens': expected an array", L->path);
    int n = arr && cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    t->added_raw = calloc((size_t)n + 1, sizeof *t->added_raw);
    t->added_norm = calloc((size_t)n + 1, sizeof *t->added_norm);
    if (!t->added_raw || !t->added_norm)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", L->path);
    char what[4200];
    int i = 0;
    for (const cJSON *a = n ? arr->child : NULL; a; a = a->next, i++) {
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
        CL_TRY(grow_ids(t, (int32_t)id + 1));
        if (t->tok_flags[id] & CL_TOK_ADDED)
            return cl_err(CL_ERR_FORMAT, "%s: id %d appears twice", what, (int)id);
        t->tok_off[id] = off;
        t->tok_len[id] = (uint32_t)nlen;
        t->tok_flags[id] = CL_TOK_PRESENT | CL_TOK_ADDED | (special ? CL_TOK_SPECIAL : 0);
        cl_added_token tok = {(int32_t)id, off, (uint32_t)nlen, special};
        if (normalized) {
            t->added_norm[t->n_added_norm++] = tok;
            t->first_norm[(uint8_t)norm[0]] = 1;
        } else {
            t->added_raw[t->n_added_raw++] = tok;
            t->first_raw[(uint8_t)content[0]] = 1;
        }
    }
    t->only_first_raw = t->only_first_norm = -1;
    for (int list = 0; list < 2; list++) {
        const uint8_t *first = list ? t->first_norm : t->first_raw;
        int count = 0, which = -1;
        for (int c = 0; c < 256; c++)
            if (first[c]) {
                count++;
                which = c;
            }
        *(list ? &t->only_first_norm : &t->only_first_raw) = count == 1 ? which : -1;
    }
    qsort(t->added_raw, t->n_added_raw, sizeof *t->added_raw, cmp_added_len);
    qsort(t->added_norm, t->n_added_norm, sizeof *t->added_norm, cmp_added_len);
    return CL_OK;
}

static int check_bytes(cl_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = cl_tok_lookup(t, &c, 1);
        if (t->byte_id[b] < 0)
            return cl_err(CL_ERR_FORMAT,
                          "%s: model.vocab has no token for byte 0x%02X (byte-level BPE needs "
                          "all 256)",
                          t->path, b);
    }
    return CL_OK;
}

int cl_tokenizer_load(const char *path, cl_tokenizer **out)
{
    *out = NULL;
    loader L = {0};
    L.path = path;
    /* Mapped rather than read: no 11 MB copy. Pipes and such are read. */
    cl_mmap map = {0};
    char *text = NULL;
    int rc = cl_is_file(path) ? cl_mmap_open(path, &map) : cl_read_file(path, &text, &L.text_len);
    if (rc != CL_OK)
        return rc;
    L.text = text ? text : map.data;
    if (!text)
        L.text_len = map.size;
    cl_tokenizer *t = calloc(1, sizeof *t);
    L.t = t;
    L.top = cJSON_CreateObject();
    L.model = cJSON_CreateObject();
    if (!t || !L.top || !L.model || !(t->path = strdup(path))) {
        rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", path);
    } else {
        pthread_mutex_init(&t->cache_lock, NULL);
        if ((rc = cl_bpe_merge_table(t, NULL, 0)) == CL_OK && (rc = walk_top(&L)) == CL_OK &&
            (rc = cl_bpe_config_model(t, L.model, path)) == CL_OK)
            rc = L.have_vocab ? CL_OK
                              : cl_err(CL_ERR_FORMAT, "%s: model.vocab is missing", path);
        if (rc == CL_OK && (rc = cl_bpe_config_pipeline(t, L.top, path)) == CL_OK &&
            (rc = read_added(&L)) == CL_OK && (rc = check_bytes(t)) == CL_OK)
            rc = cl_word_cache_create(&t->cache);
    }
    cJSON_Delete(L.top);
    cJSON_Delete(L.model);
    free(text);
    cl_mmap_close(&map);
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
