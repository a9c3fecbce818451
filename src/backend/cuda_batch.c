/* cuda_batch.c - puts a batch's metadata on the device once per forward: token
 * ids, positions, each row's sequence, per-sequence records (rows, KV start,
 * hidden range, slot, block-table offset, SSM chunk range), the query tiles of
 * the prefill attention, the 64-token SSM chunks and the block tables. One
 * pinned staging copy, one async upload; the device layout depends only on the
 * batch shape (sequence and row counts), so a decode step of a fixed shape sees
 * the same device pointers every time.
 *
 * Block tables need the page size, which the batch does not carry: they are
 * laid out for the page size the last attention op used, and re-laid out by
 * the first attention op of a forward if it differs (once per cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"

static size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

typedef struct {
    kl_seq *seq;
    int32_t *row_seq, *tiles, *chunks, *blocks;
    int n_tiles, n_chunks;
    int64_t n_blocks;
} host_meta;

static void host_meta_free(host_meta *h)
{
    free(h->seq);
    free(h->row_seq);
    free(h->tiles);
    free(h->chunks);
    free(h->blocks);
}

static int build(const cl_batch *bt, int64_t P, host_meta *h)
{
    memset(h, 0, sizeof *h);
    int ns = bt->n_seq;
    int64_t nt = bt->n_tok, tiles = 0, chunks = 0, blocks = 0;
    for (int i = 0; i < ns; i++) {
        const cl_batch_seq *s = &bt->seq[i];
        tiles += (s->n_tok + KL_ATTN_TILE - 1) / KL_ATTN_TILE;
        chunks += (s->n_tok + KL_SSM_CHUNK - 1) / KL_SSM_CHUNK;
        if (P > 0 && s->blocks)
            blocks += (s->kv_start + s->n_tok + P - 1) / P;
    }
    h->seq = calloc((size_t)(ns ? ns : 1), sizeof *h->seq);
    h->row_seq = malloc((size_t)(nt ? nt : 1) * sizeof *h->row_seq);
    h->tiles = malloc((size_t)(2 * tiles + 1) * sizeof *h->tiles);
    h->chunks = malloc((size_t)(3 * chunks + 1) * sizeof *h->chunks);
    h->blocks = malloc((size_t)(blocks + 1) * sizeof *h->blocks);
    if (!h->seq || !h->row_seq || !h->tiles || !h->chunks || !h->blocks) {
        host_meta_free(h);
        return cl_err(CL_ERR_NOMEM, "out of memory (batch metadata)");
    }
    int64_t nb = 0;
    for (int i = 0; i < ns; i++) {
        const cl_batch_seq *s = &bt->seq[i];
        kl_seq *d = &h->seq[i];
        d->tok_start = s->tok_start;
        d->n_tok = s->n_tok;
        d->kv_start = s->kv_start;
        d->hide_lo = s->hide_lo;
        d->hide_hi = s->hide_hi;
        d->slot = s->slot;
        d->blocks_off = nb;
        if (P > 0 && s->blocks) {
            int64_t np = (s->kv_start + s->n_tok + P - 1) / P;
            memcpy(h->blocks + nb, s->blocks, (size_t)np * sizeof *h->blocks);
            nb += np;
        }
        for (int64_t r = 0; r < s->n_tok; r++)
            if (s->tok_start + r < nt)
                h->row_seq[s->tok_start + r] = i;
        for (int64_t r = 0; r < s->n_tok; r += KL_ATTN_TILE) {
            h->tiles[2 * h->n_tiles] = i;
            h->tiles[2 * h->n_tiles + 1] = (int32_t)r;
            h->n_tiles++;
        }
        d->chunk0 = h->n_chunks;
        for (int64_t r = 0; r < s->n_tok; r += KL_SSM_CHUNK) {
            int64_t len = s->n_tok - r < KL_SSM_CHUNK ? s->n_tok - r : KL_SSM_CHUNK;
            h->chunks[3 * h->n_chunks] = i;
            h->chunks[3 * h->n_chunks + 1] = (int32_t)(s->tok_start + r);
            h->chunks[3 * h->n_chunks + 2] = (int32_t)len;
            h->n_chunks++;
        }
        d->n_chunks = h->n_chunks - d->chunk0;
    }
    h->n_blocks = nb;
    return CL_OK;
}

/* Builds the host metadata for page size P and uploads it; sets c->kb. */
static int upload_meta(cuda_ctx *c, const cl_batch *bt, int64_t P)
{
    host_meta h;
    CL_TRY(build(bt, P, &h));
    int ns = bt->n_seq;
    int64_t nt = bt->n_tok;
    size_t sz[7] = {
        align16((size_t)ns * sizeof(kl_seq)),      align16((size_t)nt * sizeof(int32_t)),
        align16((size_t)nt * sizeof(int64_t)),     align16((size_t)nt * sizeof(int32_t)),
        align16((size_t)h.n_tiles * 2 * sizeof(int32_t)),
        align16((size_t)h.n_chunks * 3 * sizeof(int32_t)),
        (size_t)h.n_blocks * sizeof(int32_t)};
    size_t raw[7] = {(size_t)ns * sizeof(kl_seq),
                     (size_t)nt * sizeof(int32_t),
                     (size_t)nt * sizeof(int64_t),
                     (size_t)nt * sizeof(int32_t),
                     (size_t)h.n_tiles * 2 * sizeof(int32_t),
                     (size_t)h.n_chunks * 3 * sizeof(int32_t),
                     (size_t)h.n_blocks * sizeof(int32_t)};
    const void *src[7] = {h.seq, bt->tokens, bt->positions, h.row_seq, h.tiles, h.chunks,
                          h.blocks};
    size_t total = 0;
    for (int i = 0; i < 7; i++)
        total += sz[i];
    int rc = cuda_buf_reserve(c, &c->meta, total + 16);
    /* the upload is one contiguous copy: pad every part to its aligned size */
    const void *parts[14];
    size_t psz[14];
    static const unsigned char zeros[16] = {0};
    int np = 0;
    for (int i = 0; i < 7; i++) {
        parts[np] = src[i];
        psz[np++] = raw[i];
        if (sz[i] > raw[i]) {
            parts[np] = zeros;
            psz[np++] = sz[i] - raw[i];
        }
    }
    if (rc == CL_OK)
        rc = cuda_upload(c, c->meta.p, parts, psz, np);
    if (rc == CL_OK) {
        char *d = c->meta.p;
        kl_batch *kb = &c->kb;
        memset(kb, 0, sizeof *kb);
        kb->n_seq = ns;
        kb->n_tok = nt;
        kb->decode = nt == ns;
        for (int i = 0; i < ns && kb->decode; i++)
            kb->decode = bt->seq[i].n_tok == 1;
        kb->seq = (const kl_seq *)d;
        d += sz[0];
        kb->tokens = (const int32_t *)d;
        d += sz[1];
        kb->positions = (const int64_t *)d;
        d += sz[2];
        kb->row_seq = (const int32_t *)d;
        d += sz[3];
        kb->tiles = (const int32_t *)d;
        kb->n_tiles = h.n_tiles;
        d += sz[4];
        kb->chunks = (const int32_t *)d;
        kb->n_chunks = h.n_chunks;
        d += sz[5];
        kb->blocks = (const int32_t *)d;
        if (kb->decode) { /* decode kernels use neither; keep the argument bytes shape-only */
            kb->n_tiles = 0;
            kb->n_chunks = 0;
        }
        c->kb_page_tokens = P;
        c->kb_valid = 1;
    }
    host_meta_free(&h);
    return rc;
}

int cuda_batch_prepare(cl_backend *b, cl_batch *batch)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CL_TRY(cuda_free_deferred(c));
    c->host_batch = batch;
    c->act16_src = NULL;
    CL_TRY(upload_meta(c, batch, c->page_tokens));
    batch->dev = &c->kb;
    if (c->graphs && c->kb.decode) {
        c->recording = 1;
        c->rec.n_ops = 0;
        c->rec.n_bytes = 0;
    }
    return CL_OK;
}

int cuda_batch_blocks(cuda_ctx *c, int64_t P)
{
    if (!c->kb_valid)
        return cl_err(CL_ERR_INTERNAL, "cuda: attention outside batch_prepare/release");
    if (c->kb_page_tokens == P)
        return CL_OK;
    c->page_tokens = P;
    return upload_meta(c, c->host_batch, P);
}

void cuda_batch_release(cl_backend *b, cl_batch *batch)
{
    cuda_ctx *c = cuda_of(b);
    int rc = cuda_flush(c);
    if (rc != CL_OK) { /* release returns nothing: report at the next call */
        c->sticky_rc = rc;
        snprintf(c->sticky_msg, sizeof c->sticky_msg, "%s", cl_errmsg());
    }
    c->kb_valid = 0;
    c->host_batch = NULL;
    batch->dev = NULL;
}
