/* bpe.c - encode and decode with a loaded cl_tokenizer (built by bpe_load.c). */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/bpe_impl.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/normalize.h"

/* ---- word cache ------------------------------------------------------------
 * Text repeats its words, and BPE on a chunk is a function of the chunk alone, so
 * chunk -> ids is cached. Fixed size: when full it is emptied and refilled. Only
 * the thread that holds cache_lock uses it; another encoding at the same time
 * simply runs without it (trylock) instead of waiting. */

#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_USED (CACHE_SLOTS / 2)
#define CACHE_MAX_WORD 64 /* bytes; longer chunks are rare and not cached */
#define CACHE_KEY_BYTES (1u << 20)
#define CACHE_IDS (1u << 18)

typedef struct {
    uint64_t hash; /* 0: empty */
    uint32_t key_off, ids_off;
    uint16_t key_len, n_ids;
} cache_slot;

struct cl_word_cache {
    cache_slot *slots;
    size_t used, keys_len, ids_len;
    char *keys;
    int32_t *ids;
};

int cl_word_cache_create(cl_word_cache **out)
{
    cl_word_cache *c = calloc(1, sizeof *c);
    if (c) {
        c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
        c->keys = malloc(CACHE_KEY_BYTES);
        c->ids = malloc(CACHE_IDS * sizeof *c->ids);
    }
    if (!c || !c->slots || !c->keys || !c->ids) {
        cl_word_cache_free(c);
        return cl_err(CL_ERR_NOMEM, "out of memory (tokenizer cache)");
    }
    *out = c;
    return CL_OK;
}

void cl_word_cache_free(cl_word_cache *c)
{
    if (!c)
        return;
    free(c->slots);
    free(c->keys);
    free(c->ids);
    free(c);
}

static const cache_slot *cache_get(const cl_word_cache *c, uint64_t h, const char *w, size_t n)
{
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        const cache_slot *s = &c->slots[i];
        if (!s->hash)
            return NULL;
        if (s->hash == h && s->key_len == n && cl_tok_equal(c->keys + s->key_off, w, n))
            return s;
    }
}

static void cache_put(cl_word_cache *c, uint64_t h, const char *w, size_t n, const int32_t *ids,
                      size_t n_ids)
{
    if (c->used >= CACHE_MAX_USED || c->keys_len + n > CACHE_KEY_BYTES ||
        c->ids_len + n_ids > CACHE_IDS) {
        memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
        c->used = c->keys_len = c->ids_len = 0;
    }
    uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
    while (c->slots[i].hash)
        i = (i + 1) & (CACHE_SLOTS - 1);
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, n_ids * sizeof *ids);
    c->slots[i] = (cache_slot){h, (uint32_t)c->keys_len, (uint32_t)c->ids_len, (uint16_t)n,
                               (uint16_t)n_ids};
    c->keys_len += n;
    c->ids_len += n_ids;
    c->used++;
}

/* ---- BPE on one chunk --------------------------------------------------------
 * Symbols start as the chunk's bytes and live in a linked list; every adjacent
 * pair that has a merge sits in a min-heap ordered by (rank, position). The lowest
 * is merged, its neighbours' new pairs are pushed, and entries whose pair has
 * since changed are skipped when popped. This is HF's order exactly (lowest rank
 * first, leftmost on ties) in O(n log n), so long chunks stay fast. */

typedef struct {
    uint64_t key; /* rank << 32 | position of the left symbol */
    int32_t left, right, merged;
} heap_entry;

typedef struct {
    const cl_tokenizer *t;
    cl_ids *out;
    cl_word_cache *cache; /* NULL: not ours this time */
    int parse_special;
    int32_t *sym, *next, *prev;
    heap_entry *heap;
    size_t cap, heap_n;
} encoder;

static int reserve(encoder *e, size_t n)
{
    if (n <= e->cap)
        return CL_OK;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *s = realloc(e->sym, cap * sizeof *s);
    if (s)
        e->sym = s;
    int32_t *nx = realloc(e->next, cap * sizeof *nx);
    if (nx)
        e->next = nx;
    int32_t *pv = realloc(e->prev, cap * sizeof *pv);
    if (pv)
        e->prev = pv;
    heap_entry *h = realloc(e->heap, 3 * cap * sizeof *h); /* n-1 pairs + 2 per merge */
    if (h)
        e->heap = h;
    if (!s || !nx || !pv || !h)
        return cl_err(CL_ERR_NOMEM, "out of memory (tokenizer)");
    e->cap = cap;
    return CL_OK;
}

static void heap_push(encoder *e, heap_entry x)
{
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (e->heap[parent].key <= x.key)
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = x;
}

static heap_entry heap_pop(encoder *e)
{
    heap_entry top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && e->heap[c + 1].key < e->heap[c].key)
            c++;
        if (last.key <= e->heap[c].key)
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

static void consider(encoder *e, int32_t i, int32_t j)
{
    const cl_merge_slot *m = cl_merge_find(e->t, e->sym[i], e->sym[j]);
    if (m)
        heap_push(e, (heap_entry){(uint64_t)(uint32_t)m->rank << 32 | (uint32_t)i, e->sym[i],
                                  e->sym[j], m->id});
}

static int bpe_merge(encoder *e, const uint8_t *w, size_t n)
{
    CL_TRY(reserve(e, n));
    int32_t *sym = e->sym, *next = e->next, *prev = e->prev;
    int32_t end = (int32_t)n;
    for (int32_t i = 0; i < end; i++) {
        sym[i] = e->t->byte_id[w[i]];
        next[i] = i + 1;
        prev[i] = i - 1;
    }
    e->heap_n = 0;
    for (int32_t i = 0; i + 1 < end; i++)
        consider(e, i, i + 1);
    while (e->heap_n) {
        heap_entry x = heap_pop(e);
        int32_t i = (int32_t)(uint32_t)x.key, j = next[i];
        if (sym[i] != x.left || j >= end || sym[j] != x.right)
            continue; /* stale: one side has merged since */
        sym[i] = x.merged;
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] < end)
            prev[next[j]] = i;
        if (prev[i] >= 0)
            consider(e, prev[i], i);
        if (next[i] < end)
            consider(e, i, next[i]);
    }
    for (int32_t i = 0; i < end; i = next[i])
        CL_TRY(cl_ids_push(e->out, sym[i]));
    return CL_OK;
}

/* Appends n ids at once (cl_ids_append pushes one at a time). */
static int append_ids(cl_ids *out, const int32_t *ids, size_t n)
{
    if (out->n + n > out->cap) {
        size_t cap = out->cap ? out->cap : 64;
        while (cap < out->n + n)
            cap *= 2;
        int32_t *nv = realloc(out->v, cap * sizeof *nv);
        if (!nv)
            return cl_err(CL_ERR_NOMEM, "out of memory (token ids)");
        out->v = nv;
        out->cap = cap;
    }
    memcpy(out->v + out->n, ids, n * sizeof *ids);
    out->n += n;
    return CL_OK;
}

static int bpe_chunk(encoder *e, const char *w, size_t n)
{
    const cl_tokenizer *t = e->t;
    if (n == 1)
        return cl_ids_push(e->out, t->byte_id[(uint8_t)w[0]]);
    if (t->ignore_merges) {
        int32_t id = cl_tok_lookup(t, w, n);
        if (id >= 0)
            return cl_ids_push(e->out, id);
    }
    int cacheable = e->cache && n <= CACHE_MAX_WORD;
    uint64_t h = 0;
    if (cacheable) {
        h = cl_tok_hash(w, n) | 1; /* never 0, the empty mark */
        const cache_slot *s = cache_get(e->cache, h, w, n);
        if (s)
            return append_ids(e->out, e->cache->ids + s->ids_off, s->n_ids);
    }
    size_t start = e->out->n;
    CL_TRY(bpe_merge(e, (const uint8_t *)w, n));
    if (cacheable)
        cache_put(e->cache, h, w, n, e->out->v + start, e->out->n - start);
    return CL_OK;
}

/* ---- pre-tokenizer chain and added tokens ------------------------------------ */

typedef struct {
    encoder *e;
    int stage;
} stage_ctx;

static int split_from(encoder *e, int stage, const char *text, size_t len);

static int stage_cb(void *ctx, const char *chunk, size_t len)
{
    stage_ctx *c = ctx;
    return split_from(c->e, c->stage, chunk, len);
}

/* Runs Split steps stage.. on text, then BPE on each final chunk. */
static int split_from(encoder *e, int stage, const char *text, size_t len)
{
    if (stage == e->t->n_pretok)
        return len ? bpe_chunk(e, text, len) : CL_OK;
    stage_ctx c = {e, stage + 1};
    return cl_pretok_split(e->t->pretok[stage], text, len, stage_cb, &c);
}

static int pretokenized(encoder *e, const char *text, size_t len)
{
    return split_from(e, 0, text, len);
}

/* Cuts text at added tokens (leftmost match, longest first, as HF's leftmost-
 * longest Aho-Corasick does): the tokens become their ids, the pieces between go
 * to `piece`. */
static int split_added(encoder *e, const cl_added_token *list, size_t n, const uint8_t *first,
                       int only_first, const char *text, size_t len,
                       int (*piece)(encoder *, const char *, size_t))
{
    const char *bytes = e->t->bytes;
    size_t seg = 0, i = 0;
    while (i < len) {
        const cl_added_token *hit = NULL;
        if (only_first >= 0) { /* all start alike (Qwen: '<'): jump to the next one */
            const char *q = memchr(text + i, only_first, len - i);
            if (!q)
                break;
            i = (size_t)(q - text);
        }
        if (first[(uint8_t)text[i]])
            for (size_t k = 0; k < n && !hit; k++)
                if (list[k].len <= len - i && !memcmp(text + i, bytes + list[k].off, list[k].len))
                    hit = &list[k];
        if (!hit) {
            i++;
            continue;
        }
        if (i > seg)
            CL_TRY(piece(e, text + seg, i - seg));
        CL_TRY(cl_ids_push(e->out, hit->id));
        i += hit->len;
        seg = i;
    }
    return seg < len ? piece(e, text + seg, len - seg) : CL_OK;
}

/* A piece of raw text between added tokens: normalize, match normalized added
 * tokens, pre-tokenize. */
static int raw_piece(encoder *e, const char *text, size_t len)
{
    const cl_tokenizer *t = e->t;
    const char *norm = text;
    size_t nlen = len;
    int owned = 0;
    if (t->nfc)
        CL_TRY(cl_nfc(text, len, &norm, &nlen, &owned));
    int rc;
    if (e->parse_special && t->n_added_norm)
        rc = split_added(e, t->added_norm, t->n_added_norm, t->first_norm, t->only_first_norm,
                         norm, nlen, pretokenized);
    else
        rc = pretokenized(e, norm, nlen);
    if (owned)
        free((void *)norm);
    return rc;
}

int cl_tokenizer_encode(const cl_tokenizer *t, const char *text, size_t len, int parse_special,
                        cl_ids *out)
{
    size_t bad = cl_utf8_invalid_at(text, len);
    if (bad != len)
        return cl_err(CL_ERR_FORMAT, "invalid UTF-8 at byte %zu of the text", bad);
    encoder e = {.t = t, .out = out, .parse_special = parse_special};
    /* cache_lock guards the cache only; the tokenizer is otherwise read-only. */
    pthread_mutex_t *lock = (pthread_mutex_t *)&t->cache_lock;
    int locked = pthread_mutex_trylock(lock) == 0;
    if (locked)
        e.cache = t->cache;
    int rc;
    if (parse_special && t->n_added_raw)
        rc = split_added(&e, t->added_raw, t->n_added_raw, t->first_raw, t->only_first_raw, text,
                         len, raw_piece);
    else
        rc = raw_piece(&e, text, len);
    if (locked)
        pthread_mutex_unlock(lock);
    free(e.sym);
    free(e.next);
    free(e.prev);
    free(e.heap);
    return rc;
}

/* ---- decoding and lookups ---------------------------------------------------- */

int cl_tokenizer_token_bytes(const cl_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    if (id < 0 || id >= t->n_ids || !(t->tok_flags[id] & CL_TOK_PRESENT))
        return cl_err(CL_ERR_RANGE, "token id %d is not in the vocabulary of %s", id, t->path);
    *bytes = t->bytes + t->tok_off[id];
    *len = t->tok_len[id];
    return CL_OK;
}

int cl_tokenizer_decode(const cl_tokenizer *t, const int32_t *ids, size_t n, char **out,
                        size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b = NULL;
        size_t l = 0;
        CL_TRY(cl_tokenizer_token_bytes(t, ids[i], &b, &l));
        total += l;
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "out of memory (decode)");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + o, t->bytes + t->tok_off[ids[i]], t->tok_len[ids[i]]);
        o += t->tok_len[ids[i]];
    }
    buf[o] = 0;
    *out = buf;
    if (len)
        *len = o;
    return CL_OK;
}

int32_t cl_tokenizer_find(const cl_tokenizer *t, const char *token_text)
{
    size_t n = strlen(token_text);
    for (int list = 0; list < 2; list++) {
        const cl_added_token *a = list ? t->added_norm : t->added_raw;
        size_t na = list ? t->n_added_norm : t->n_added_raw;
        for (size_t i = 0; i < na; i++)
            if (a[i].len == n && !memcmp(t->bytes + a[i].off, token_text, n))
                return a[i].id;
    }
    if (!n)
        return -1;
    int32_t id = cl_tok_lookup(t, token_text, n);
    if (id >= 0 || n > 256)
        return id;
    /* Not raw bytes of a token: maybe its vocabulary spelling ("Ċ", "Ġthe"). */
    uint8_t raw[256];
    long r = cl_bytelevel_decode(token_text, n, raw);
    return r > 0 ? cl_tok_lookup(t, (const char *)raw, (size_t)r) : -1;
}

int32_t cl_tokenizer_vocab_size(const cl_tokenizer *t) { return t->n_ids; }

int cl_tokenizer_is_special(const cl_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && (t->tok_flags[id] & CL_TOK_SPECIAL);
}

int cl_tokenizer_is_added(const cl_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && (t->tok_flags[id] & CL_TOK_ADDED);
}
