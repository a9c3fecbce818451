#include "mkmodel/tiny_train.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/status.h"
#include "tokenizer/pretok.h"

/* A distinct chunk of the text, as a sequence of token ids, and how often it occurs. */
typedef struct {
    int32_t *sym;
    size_t n;
    int64_t count;
} word;

typedef struct {
    cl_bpe_vocab *v;
    size_t cap_tokens, cap_bytes, cap_merges, bytes_len;
    int32_t *tok_slots; /* token string set: slot -> id + 1, 0 empty */
    uint64_t tok_mask;
    word *words;
    size_t n_words, cap_words;
    int32_t *word_slots; /* chunk string set while collecting: slot -> word + 1 */
    char **word_text;
    size_t *word_len;
    uint64_t word_mask;
} trainer;

static int nomem(void) { return cl_err(CL_ERR_NOMEM, "out of memory (tiny tokenizer)"); }

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return CL_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np)
        return nomem();
    *p = np;
    *cap = c;
    return CL_OK;
}

/* ---- token strings ---- */

static int32_t tok_find(const trainer *tr, const char *s, size_t n)
{
    const cl_bpe_vocab *v = tr->v;
    for (uint64_t i = XXH3_64bits(s, n) & tr->tok_mask;; i = (i + 1) & tr->tok_mask) {
        int32_t id = tr->tok_slots[i] - 1;
        if (id < 0)
            return -1;
        if (v->len[id] == n && !memcmp(v->bytes + v->off[id], s, n))
            return id;
    }
}

/* Adds a token (the caller checked it is new); the set is sized for the final count. */
static int tok_add(trainer *tr, const char *s, size_t n)
{
    cl_bpe_vocab *v = tr->v;
    CL_TRY(grow((void **)&v->bytes, &tr->cap_bytes, tr->bytes_len + n, 1));
    int32_t id = v->n_tokens++;
    memcpy(v->bytes + tr->bytes_len, s, n);
    v->off[id] = (uint32_t)tr->bytes_len;
    v->len[id] = (uint32_t)n;
    tr->bytes_len += n;
    uint64_t i = XXH3_64bits(s, n) & tr->tok_mask;
    while (tr->tok_slots[i])
        i = (i + 1) & tr->tok_mask;
    tr->tok_slots[i] = id + 1;
    return CL_OK;
}

static int add_merge(trainer *tr, int32_t a, int32_t b)
{
    cl_bpe_vocab *v = tr->v;
    CL_TRY(grow((void **)&v->merges, &tr->cap_merges, v->n_merges + 1, sizeof *v->merges));
    v->merges[v->n_merges][0] = a;
    v->merges[v->n_merges][1] = b;
    v->n_merges++;
    return CL_OK;
}

/* The id of a+b, adding the token if it is new (*added set then). */
static int concat(trainer *tr, int32_t a, int32_t b, int32_t *id, int *added)
{
    cl_bpe_vocab *v = tr->v;
    size_t n = v->len[a] + v->len[b];
    char *s = malloc(n);
    if (!s)
        return nomem();
    memcpy(s, v->bytes + v->off[a], v->len[a]);
    memcpy(s + v->len[a], v->bytes + v->off[b], v->len[b]);
    *id = tok_find(tr, s, n);
    *added = *id < 0;
    int rc = CL_OK;
    if (*added) {
        *id = v->n_tokens;
        rc = tok_add(tr, s, n);
    }
    free(s);
    return rc;
}

/* ---- distinct chunks of the text ---- */

static int collect(void *ctx, const char *chunk, size_t n)
{
    trainer *tr = ctx;
    uint64_t i = XXH3_64bits(chunk, n) & tr->word_mask;
    for (;; i = (i + 1) & tr->word_mask) {
        int32_t w = tr->word_slots[i] - 1;
        if (w < 0)
            break;
        if (tr->word_len[w] == n && !memcmp(tr->word_text[w], chunk, n)) {
            tr->words[w].count++;
            return CL_OK;
        }
    }
    if (tr->n_words * 2 >= tr->word_mask) /* sized for the text: cannot happen */
        return cl_err(CL_ERR_INTERNAL, "tiny tokenizer: too many chunks");
    size_t w = tr->n_words++;
    word *wd = &tr->words[w];
    wd->sym = malloc(n * sizeof *wd->sym);
    tr->word_text[w] = (char *)chunk; /* points into the text, which outlives this */
    tr->word_len[w] = n;
    if (!wd->sym)
        return nomem();
    for (size_t k = 0; k < n; k++)
        wd->sym[k] = (uint8_t)chunk[k];
    wd->n = n;
    wd->count = 1;
    tr->word_slots[i] = (int32_t)w + 1;
    return CL_OK;
}

/* ---- phase 1: most frequent pair ---- */

typedef struct {
    uint64_t key; /* left << 32 | right, UINT64_MAX empty */
    int64_t count;
} pair_slot;

/* Finds the most frequent adjacent pair over all words; *best = UINT64_MAX if none. */
static void best_pair(const trainer *tr, pair_slot *slots, uint64_t mask, uint64_t *best)
{
    for (uint64_t i = 0; i <= mask; i++)
        slots[i].key = UINT64_MAX;
    *best = UINT64_MAX;
    int64_t best_count = 0;
    for (size_t w = 0; w < tr->n_words; w++) {
        const word *wd = &tr->words[w];
        for (size_t k = 0; k + 1 < wd->n; k++) {
            uint64_t key = (uint64_t)(uint32_t)wd->sym[k] << 32 | (uint32_t)wd->sym[k + 1];
            uint64_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & mask;
            while (slots[i].key != key && slots[i].key != UINT64_MAX)
                i = (i + 1) & mask;
            if (slots[i].key == UINT64_MAX) {
                slots[i].key = key;
                slots[i].count = 0;
            }
            slots[i].count += wd->count;
            if (slots[i].count > best_count ||
                (slots[i].count == best_count && key < *best)) {
                best_count = slots[i].count;
                *best = key;
            }
        }
    }
}

static void apply_merge(trainer *tr, int32_t a, int32_t b, int32_t id)
{
    for (size_t w = 0; w < tr->n_words; w++) {
        word *wd = &tr->words[w];
        size_t o = 0;
        for (size_t k = 0; k < wd->n; k++) {
            if (k + 1 < wd->n && wd->sym[k] == a && wd->sym[k + 1] == b) {
                wd->sym[o++] = id;
                k++;
            } else {
                wd->sym[o++] = wd->sym[k];
            }
        }
        wd->n = o;
    }
}

static int merged_before(const cl_bpe_vocab *v, int32_t a, int32_t b)
{
    for (size_t m = 0; m < v->n_merges; m++)
        if (v->merges[m][0] == a && v->merges[m][1] == b)
            return 1;
    return 0;
}

static int phase1(trainer *tr, int32_t target)
{
    size_t pairs = 0;
    for (size_t w = 0; w < tr->n_words; w++)
        pairs += tr->words[w].n;
    uint64_t size = 1024;
    while (size < 2 * pairs)
        size *= 2;
    pair_slot *slots = malloc(size * sizeof *slots);
    if (!slots)
        return nomem();
    int rc = CL_OK;
    while (rc == CL_OK && tr->v->n_tokens < target) {
        uint64_t best;
        best_pair(tr, slots, size - 1, &best);
        if (best == UINT64_MAX)
            break; /* every chunk is a single token now */
        int32_t a = (int32_t)(best >> 32), b = (int32_t)(uint32_t)best, id;
        int added;
        if ((rc = concat(tr, a, b, &id, &added)) != CL_OK)
            break;
        /* A pair can come back when a later merge rebuilds an existing token; its
         * first rank already covers it. */
        if (added || !merged_before(tr->v, a, b))
            rc = add_merge(tr, a, b);
        apply_merge(tr, a, b, id);
    }
    free(slots);
    return rc;
}

/* ---- phase 2: word tokens + one letter ---- */

static int word_like(const cl_bpe_vocab *v, int32_t id)
{
    const char *s = v->bytes + v->off[id];
    size_t n = v->len[id], k = s[0] == ' ';
    if (n < k + 2)
        return 0;
    for (; k < n; k++)
        if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z')))
            return 0;
    return 1;
}

static int phase2(trainer *tr, int32_t target)
{
    static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";
    cl_bpe_vocab *v = tr->v;
    while (v->n_tokens < target) {
        int32_t before = v->n_tokens;
        for (const char *l = letters; *l && v->n_tokens < target; l++)
            for (int32_t a = 256; a < before && v->n_tokens < target; a++) {
                if (!word_like(v, a))
                    continue;
                int32_t id;
                int added;
                CL_TRY(concat(tr, a, (uint8_t)*l, &id, &added));
                if (added)
                    CL_TRY(add_merge(tr, a, (uint8_t)*l));
            }
        if (v->n_tokens == before) /* no word token at all: cannot happen with the corpus */
            return cl_err(CL_ERR_INTERNAL, "tiny tokenizer: cannot fill the vocabulary");
    }
    return CL_OK;
}

int cl_bpe_train(const char *text, size_t len, int32_t n_tokens, cl_bpe_vocab *out)
{
    memset(out, 0, sizeof *out);
    if (n_tokens < 256)
        return cl_err(CL_ERR_ARG, "tiny tokenizer: %d tokens is fewer than the 256 bytes",
                      n_tokens);
    trainer tr = {.v = out};
    uint64_t tsize = 1024, wsize = 1024;
    while (tsize < 2 * (uint64_t)n_tokens)
        tsize *= 2;
    while (wsize < 2 * (uint64_t)len + 2)
        wsize *= 2;
    tr.tok_mask = tsize - 1;
    tr.word_mask = wsize - 1;
    tr.tok_slots = calloc(tsize, sizeof *tr.tok_slots);
    tr.word_slots = calloc(wsize, sizeof *tr.word_slots);
    tr.words = calloc(len + 1, sizeof *tr.words);
    tr.word_text = calloc(len + 1, sizeof *tr.word_text);
    tr.word_len = calloc(len + 1, sizeof *tr.word_len);
    out->off = calloc((size_t)n_tokens, sizeof *out->off);
    out->len = calloc((size_t)n_tokens, sizeof *out->len);
    cl_pretok *pt = NULL;
    int rc = CL_OK;
    if (!tr.tok_slots || !tr.word_slots || !tr.words || !tr.word_text || !tr.word_len ||
        !out->off || !out->len)
        rc = nomem();
    for (int b = 0; rc == CL_OK && b < 256; b++) {
        char c = (char)b;
        rc = tok_add(&tr, &c, 1);
    }
    if (rc == CL_OK)
        rc = cl_pretok_create(cl_pretok_qwen2_pattern, "tiny tokenizer", &pt);
    if (rc == CL_OK)
        rc = cl_pretok_split(pt, text, len, collect, &tr);
    if (rc == CL_OK)
        rc = phase1(&tr, n_tokens);
    if (rc == CL_OK)
        rc = phase2(&tr, n_tokens);
    cl_pretok_free(pt);
    for (size_t w = 0; w < tr.n_words; w++)
        free(tr.words[w].sym);
    free(tr.words);
    free(tr.word_text);
    free(tr.word_len);
    free(tr.word_slots);
    free(tr.tok_slots);
    if (rc != CL_OK)
        cl_bpe_vocab_free(out);
    return rc;
}

void cl_bpe_vocab_free(cl_bpe_vocab *v)
{
    free(v->bytes);
    free(v->off);
    free(v->len);
    free(v->merges);
    memset(v, 0, sizeof *v);
}
