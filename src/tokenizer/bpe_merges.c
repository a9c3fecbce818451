/* bpe_merges.c - reads model.merges into the merge table: (left id, right id) ->
 * (rank, merged id), the table BPE consults for every adjacent pair. */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "tokenizer/bpe_impl.h"
#include "tokenizer/bytelevel.h"

/* Merges are collected in file order and put into the hash table afterwards in
 * the order of their home slots: inserting them as read would touch a 4 MB table
 * at random, one cache and TLB miss per merge (the largest cost of loading). */
int cl_bpe_merge_table(cl_tokenizer *t, const cl_merge_slot *recs, size_t n)
{
    uint64_t size = cl_tok_table_size(n), mask = size - 1;
    int bits = 0;
    while ((UINT64_C(1) << bits) < size)
        bits++;
    int shift = bits > 12 ? bits - 12 : 0;
    size_t nb = (size_t)(size >> shift);
    size_t *start = calloc(nb + 1, sizeof *start);
    cl_merge_slot *sorted = malloc((n ? n : 1) * sizeof *sorted);
    cl_merge_slot *table = malloc(size * sizeof *table);
    if (!start || !sorted || !table) {
        free(start);
        free(sorted);
        free(table);
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
    }
    for (size_t i = 0; i < n; i++)
        start[((cl_merge_hash(recs[i].key) & mask) >> shift) + 1]++;
    for (size_t b = 0; b < nb; b++)
        start[b + 1] += start[b];
    for (size_t i = 0; i < n; i++) /* stable: a repeated pair keeps file order */
        sorted[start[(cl_merge_hash(recs[i].key) & mask) >> shift]++] = recs[i];
    for (uint64_t i = 0; i < size; i++)
        table[i].key = CL_MERGE_EMPTY;
    size_t distinct = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t i = cl_merge_hash(sorted[k].key) & mask;
        while (table[i].key != CL_MERGE_EMPTY && table[i].key != sorted[k].key)
            i = (i + 1) & mask;
        distinct += table[i].key == CL_MERGE_EMPTY;
        table[i] = sorted[k]; /* a pair listed twice keeps its last rank, as in HF */
    }
    free(start);
    free(sorted);
    free(t->merges);
    t->merges = table;
    t->merge_mask = mask;
    t->n_merges = distinct;
    return CL_OK;
}

typedef struct {
    cl_tokenizer *t;
    int32_t n_vocab_ids; /* 1 + highest vocab id */
    uint8_t *raw;
    size_t cap;
    int32_t last;        /* id of the previous merge's token */
    cl_merge_slot *recs; /* (pair, rank, id) in file order */
    size_t n, cap_recs;
    struct {
        uint64_t hash;
        int32_t id;
    } hot[4096]; /* recent part lookups: merge parts repeat a lot ("Ġ", "t", "in") */
} merge_state;

/* One side of a merge, mapped form -> raw bytes and id. *skip is set when it is
 * not a byte-level string: such a merge never applies (BPE meets no such token). */
static int merge_part(merge_state *ms, const char *s, size_t n, size_t rank, uint8_t *raw,
                      size_t *raw_len, int32_t *id, int *skip)
{
    const cl_tokenizer *t = ms->t;
    long r = cl_bytelevel_decode(s, n, raw);
    if (r < 0) {
        *skip = 1;
        return CL_OK;
    }
    *raw_len = (size_t)r;
    uint64_t h = cl_tok_hash(raw, (size_t)r);
    int32_t hid = ms->hot[h & 4095].id;
    if (ms->hot[h & 4095].hash == h && hid < t->n_ids && t->tok_len[hid] == (uint32_t)r &&
        !memcmp(t->bytes + t->tok_off[hid], raw, (size_t)r)) {
        *id = hid;
        return CL_OK;
    }
    *id = cl_tok_lookup_hashed(t, (const char *)raw, (size_t)r, h);
    if (*id < 0)
        return cl_err(CL_ERR_FORMAT, "%s: model.merges[%zu]: '%.*s' is not in model.vocab",
                      t->path, rank, (int)(n > 64 ? 64 : n), s);
    ms->hot[h & 4095].hash = h;
    ms->hot[h & 4095].id = *id;
    return CL_OK;
}

static int add_merge(merge_state *ms, size_t rank, const char *a, size_t an, const char *b,
                     size_t bn)
{
    cl_tokenizer *t = ms->t;
    if (an + bn > ms->cap) {
        size_t cap = (an + bn) * 2;
        uint8_t *nb = realloc(ms->raw, cap);
        if (!nb)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
        ms->raw = nb;
        ms->cap = cap;
    }
    size_t la, lb;
    int32_t ia, ib;
    int skip = 0;
    CL_TRY(merge_part(ms, a, an, rank, ms->raw, &la, &ia, &skip));
    if (skip)
        return CL_OK;
    CL_TRY(merge_part(ms, b, bn, rank, ms->raw + la, &lb, &ib, &skip));
    if (skip)
        return CL_OK;
    /* Trained vocabularies number merged tokens in merge order: try the id after
     * the previous merge's before hashing. */
    int32_t merged = ms->last + 1;
    if (merged <= 0 || merged >= ms->n_vocab_ids || !(t->tok_flags[merged] & CL_TOK_MAPPED) ||
        t->tok_len[merged] != la + lb || memcmp(t->bytes + t->tok_off[merged], ms->raw, la + lb))
        merged = cl_tok_lookup(t, (const char *)ms->raw, la + lb);
    if (merged < 0)
        return cl_err(CL_ERR_FORMAT,
                      "%s: model.merges[%zu]: the merged token '%.*s%.*s' is not in model.vocab",
                      t->path, rank, (int)(an > 64 ? 64 : an), a, (int)(bn > 64 ? 64 : bn), b);
    ms->last = merged;
    if (ms->n == ms->cap_recs) {
        size_t cap = ms->cap_recs ? ms->cap_recs * 2 : (size_t)ms->n_vocab_ids + 1024;
        cl_merge_slot *nr = realloc(ms->recs, cap * sizeof *nr);
        if (!nr)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
        ms->recs = nr;
        ms->cap_recs = cap;
    }
    ms->recs[ms->n++] =
        (cl_merge_slot){(uint64_t)(uint32_t)ia << 32 | (uint32_t)ib, (int32_t)rank, merged};
    return CL_OK;
}

/* ["a b", ...] (older files) or [["a", "b"], ...]; rank = index. */
int cl_bpe_read_merges(cl_tokenizer *t, cl_jscan *s, int32_t n_vocab_ids)
{
    if (cl_jscan_peek(s) != '[')
        return cl_jscan_error(s, "model.merges must be an array");
    s->p++;
    merge_state *ms = calloc(1, sizeof *ms);
    if (!ms)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
    ms->t = t;
    ms->n_vocab_ids = n_vocab_ids;
    ms->last = -1; /* hot[] starts as hash 0, id 0: any hit is checked byte for byte */
    size_t rank = 0;
    char *first_copy = NULL;
    int rc = CL_OK, first = 1, more = 1;
    while (rc == CL_OK) {
        if ((rc = cl_jscan_more(s, ']', &first, &more)) != CL_OK || !more)
            break;
        const char *a, *b;
        size_t an, bn;
        int c = cl_jscan_peek(s);
        if (c == '"') {
            if ((rc = cl_jscan_string(s, &a, &an)))
                break;
            const char *sp = memchr(a, ' ', an);
            if (!sp || memchr(sp + 1, ' ', an - (size_t)(sp + 1 - a))) {
                rc = cl_err(CL_ERR_FORMAT, "%s: model.merges[%zu]: expected \"left right\"",
                            t->path, rank);
                break;
            }
            rc = add_merge(ms, rank, a, (size_t)(sp - a), sp + 1, an - (size_t)(sp + 1 - a));
        } else if (c == '[') {
            s->p++;
            /* The first string may sit in the scanner's buffer, which the second
             * string reuses: copy it out when it was unescaped. */
            if ((rc = cl_jscan_string(s, &a, &an)))
                break;
            if (a == s->buf) {
                free(first_copy);
                if (!(first_copy = malloc(an + 1))) {
                    rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", t->path);
                    break;
                }
                memcpy(first_copy, a, an);
                a = first_copy;
            }
            if ((rc = cl_jscan_expect(s, ',')) || (rc = cl_jscan_string(s, &b, &bn)) ||
                (rc = cl_jscan_expect(s, ']')))
                break;
            rc = add_merge(ms, rank, a, an, b, bn);
        } else {
            rc = cl_jscan_error(s, "model.merges: expected a string or a pair");
        }
        rank++;
    }
    if (rc == CL_OK)
        rc = cl_bpe_merge_table(t, ms->recs, ms->n);
    free(first_copy);
    free(ms->raw);
    free(ms->recs);
    free(ms);
    return rc;
}
