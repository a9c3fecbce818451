/* kv_io.c - see kv_io.h. */
#include "engine/kv_io.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "model/shard.h"

#define DEFAULT_CHUNK ((size_t)8 << 20)
#define DEFAULT_RING 16

struct cl_kv_pump {
    cl_cache *c;
    cl_backend *b;
    size_t row;        /* bytes per KV row (one slot of one pool) */
    size_t chunk;      /* bytes per staging chunk: whole rows */
    int ring;          /* staging chunks */
    char **pinned;     /* [ring] page-locked data chunks */
    cl_kv_row **maps;  /* [ring] page-locked row maps */
    void *dev_data[2]; /* backend staging (double buffered) */
    cl_kv_row *dev_map[2];
    void **pools_dev;  /* 2 * n_attn pool pointers in backend memory */
    uint64_t tickets[64];

    /* the run in progress */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const cl_kv_range *kv;
    int n_kv;
    uint64_t *kv_base; /* [n_kv] offset of each range in the compacted KV space */
    uint64_t kv_total;
    const cl_side_range *side;
    int n_side;
    uint64_t n_chunks;
    uint64_t *filled;  /* [n_chunks] bytes written */
    uint64_t freed;    /* chunks [0, freed) are done: chunk j may be written if j < freed + ring */
    int failed;        /* first failure (its message is in fail_msg) */
    char fail_msg[512];
    int producer_done, producer_rc;
    cl_kv_produce_fn produce;
    void *user;
    /* a sharded cache: one pump per rank cache moves that rank's part of each row (its
     * heads); this pump's staging holds rows in the full layout */
    cl_kv_pump **sub; /* [c->tp] (NULL: not sharded) */
    void *host_buf;   /* cl_kv_pump_host_buffer's (page-locked, kept) */
    size_t host_buf_bytes;
};

static size_t kv_row_bytes(const cl_cache *c)
{
    return c->n_attn ? (size_t)(c->kv[0].n_kv_heads * c->kv[0].head_dim) *
                           cl_dtype_size(c->kv_dtype)
                     : 0;
}

int cl_kv_pump_create(cl_cache *c, size_t chunk_bytes, int n_chunks, cl_kv_pump **out)
{
    cl_kv_pump *p = calloc(1, sizeof *p);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    p->c = c;
    p->b = c->b;
    p->row = kv_row_bytes(c);
    size_t want = chunk_bytes ? chunk_bytes : DEFAULT_CHUNK;
    p->chunk = p->row ? (want / p->row > 0 ? want / p->row : 1) * p->row : want;
    p->ring = n_chunks > 1 ? n_chunks : DEFAULT_RING;
    if (p->ring > 64)
        p->ring = 64; /* tickets[] */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (c->shard) {
        p->sub = calloc((size_t)c->tp, sizeof *p->sub);
        int rc = p->sub ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
        for (int r = 0; rc == CL_OK && r < c->tp; r++)
            rc = cl_kv_pump_create(c->shard[r], p->chunk, 2, &p->sub[r]);
        if (rc != CL_OK) {
            cl_kv_pump_free(p);
            return rc;
        }
    }
    *out = p;
    return CL_OK;
}

static int free_sub(void *user, int r)
{
    cl_kv_pump *p = user;
    cl_kv_pump_free(p->sub[r]);
    p->sub[r] = NULL;
    return CL_OK;
}

void cl_kv_pump_free(cl_kv_pump *p)
{
    if (!p)
        return;
    if (p->sub) { /* each rank's staging on its own thread */
        cl_ranks_run(p->c->ranks, free_sub, p, NULL);
        free(p->sub);
    }
    const cl_backend_ops *o = p->b->ops;
    for (int i = 0; p->pinned && i < p->ring; i++) {
        o->host_free(p->b, p->pinned[i]);
        o->host_free(p->b, p->maps[i]);
    }
    free(p->pinned);
    free(p->maps);
    if (p->host_buf)
        o->host_free(p->b, p->host_buf);
    for (int i = 0; i < 2; i++) {
        if (p->dev_data[i])
            o->free(p->b, p->dev_data[i]);
        if (p->dev_map[i])
            o->free(p->b, p->dev_map[i]);
    }
    if (p->pools_dev)
        o->free(p->b, p->pools_dev);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* Staging on first use; the pool pointers every time (growable pools move). */
static int prepare(cl_kv_pump *p)
{
    const cl_backend_ops *o = p->b->ops;
    size_t map_bytes = (p->chunk / p->row) * sizeof(cl_kv_row);
    if (!p->pinned) {
        p->pinned = calloc((size_t)p->ring, sizeof *p->pinned);
        p->maps = calloc((size_t)p->ring, sizeof *p->maps);
        if (!p->pinned || !p->maps)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        for (int i = 0; i < p->ring; i++) {
            p->pinned[i] = o->host_alloc(p->b, p->chunk);
            p->maps[i] = o->host_alloc(p->b, map_bytes);
            if (!p->pinned[i] || !p->maps[i])
                return cl_err(CL_ERR_NOMEM, "out of host memory for state staging (%d x %zu "
                                            "bytes)",
                              p->ring, p->chunk);
        }
        if (p->sub)
            return CL_OK; /* the rank pumps hold the device staging */
        for (int i = 0; i < 2; i++) {
            p->dev_data[i] = o->alloc(p->b, p->chunk);
            p->dev_map[i] = o->alloc(p->b, map_bytes);
            if (!p->dev_data[i] || !p->dev_map[i])
                return cl_err(CL_ERR_NOMEM, "out of %s memory for state staging", o->name);
        }
        p->pools_dev = o->alloc(p->b, (size_t)(2 * p->c->n_attn) * sizeof(void *));
        if (!p->pools_dev)
            return cl_err(CL_ERR_NOMEM, "out of %s memory", o->name);
    }
    if (p->sub)
        return CL_OK;
    int n = 2 * p->c->n_attn;
    void **host = malloc((size_t)n * sizeof *host);
    if (!host)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->c->n_attn; i++) {
        host[2 * i] = p->c->kv[i].k;
        host[2 * i + 1] = p->c->kv[i].v;
    }
    int rc = o->from_host(p->b, p->pools_dev, host, (size_t)n * sizeof *host);
    free(host);
    return rc;
}

static uint64_t chunk_len(const cl_kv_pump *p, uint64_t j)
{
    uint64_t start = j * p->chunk;
    return p->kv_total - start < p->chunk ? p->kv_total - start : p->chunk;
}

/* Row map of `rows` consecutive rows of the compacted KV space from row g. */
static void fill_map(const cl_kv_pump *p, uint64_t g, size_t rows, cl_kv_row *map)
{
    int64_t P = p->c->o.page_tokens;
    int i = 0;
    for (size_t k = 0; k < rows; k++, g++) {
        while (i + 1 < p->n_kv && g >= p->kv_base[i + 1] / p->row)
            i++;
        const cl_kv_range *r = &p->kv[i];
        uint64_t local = g - p->kv_base[i] / p->row; /* [pool][token] within the range */
        int64_t pool = (int64_t)(local / (uint64_t)r->n), tok = r->t0 + (int64_t)(local % (uint64_t)r->n);
        map[k].pool = (int32_t)pool;
        map[k].slot = (int32_t)(r->seq->pages[tok / P] * P + tok % P);
    }
}

static void fail(cl_kv_pump *p, int rc)
{
    pthread_mutex_lock(&p->mu);
    if (!p->failed) {
        p->failed = rc;
        snprintf(p->fail_msg, sizeof p->fail_msg, "%s", cl_errmsg());
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Copies [pos, pos + n) of the compacted KV space from src into the staging ring. */
static int put_kv(cl_kv_pump *p, uint64_t pos, const char *src, uint64_t n)
{
    while (n) {
        uint64_t j = pos / p->chunk, in = pos % p->chunk;
        uint64_t take = p->chunk - in < n ? p->chunk - in : n;
        pthread_mutex_lock(&p->mu);
        while (!p->failed && j >= p->freed + (uint64_t)p->ring)
            pthread_cond_wait(&p->cv, &p->mu);
        int failed = p->failed;
        pthread_mutex_unlock(&p->mu);
        if (failed)
            return cl_err(failed, "%s", p->fail_msg);
        memcpy(p->pinned[j % (uint64_t)p->ring] + in, src, take);
        pthread_mutex_lock(&p->mu);
        p->filled[j] += take;
        if (p->filled[j] == chunk_len(p, j))
            pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pos += take;
        src += take;
        n -= take;
    }
    return CL_OK;
}

int cl_kv_pump_write(cl_kv_pump *p, uint64_t offset, const void *data, size_t bytes)
{
    uint64_t end = offset + bytes;
    for (int i = 0; i < p->n_side; i++) {
        const cl_side_range *s = &p->side[i];
        uint64_t a = offset > s->offset ? offset : s->offset;
        uint64_t b = end < s->offset + s->bytes ? end : s->offset + s->bytes;
        if (a < b)
            memcpy((char *)s->dst + (a - s->offset), (const char *)data + (a - offset), b - a);
    }
    /* the first range that may overlap: ranges are sorted by offset */
    int lo = 0, hi = p->n_kv;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        uint64_t r_end = p->kv[mid].offset + (p->kv_base[mid + 1] - p->kv_base[mid]);
        if (r_end <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo; i < p->n_kv && p->kv[i].offset < end; i++) {
        uint64_t r_bytes = p->kv_base[i + 1] - p->kv_base[i];
        uint64_t a = offset > p->kv[i].offset ? offset : p->kv[i].offset;
        uint64_t b = end < p->kv[i].offset + r_bytes ? end : p->kv[i].offset + r_bytes;
        if (a >= b)
            continue;
        int rc = put_kv(p, p->kv_base[i] + (a - p->kv[i].offset),
                        (const char *)data + (a - offset), b - a);
        if (rc != CL_OK)
            return rc;
    }
    return CL_OK;
}

static void *producer_main(void *arg)
{
    cl_kv_pump *p = arg;
    int rc = p->produce(p->user, p);
    if (rc != CL_OK)
        fail(p, rc);
    pthread_mutex_lock(&p->mu);
    p->producer_done = 1;
    p->producer_rc = rc;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- a sharded cache: every rank moves its heads of the chunk's rows ----
 * The rows of a chunk are in the full layout ([Hkv][D] each); rank r's part of a row
 * is its heads (model/shard.h), staged in the rank pump's first chunk, uploaded with
 * the row map and moved by the rank's backend, waited for before the next chunk. */
typedef struct {
    cl_kv_pump *p;
    char *data;      /* full rows */
    cl_kv_row *map;  /* host row map */
    size_t rows;
    int gather;
} rank_move;

static int move_rank(void *user, int r)
{
    const rank_move *m = user;
    cl_kv_pump *s = m->p->sub[r];
    const cl_backend_ops *o = s->b->ops;
    const cl_kv_layer *kv = &m->p->c->kv[0];
    cl_shard_segs segs = {1, {kv->n_kv_heads}, {kv->head_dim}};
    size_t es = cl_dtype_size(kv->kv_dtype);
    int n = m->p->c->tp;
    uint64_t t;
    CL_TRY(prepare(s));
    memcpy(s->maps[0], m->map, m->rows * sizeof(cl_kv_row));
    CL_TRY(o->upload_async(s->b, s->dev_map[0], s->maps[0], m->rows * sizeof(cl_kv_row), &t));
    if (!m->gather) {
        cl_shard_copy(&segs, n, r, es, (int64_t)m->rows, m->data, s->pinned[0], 0);
        CL_TRY(o->upload_async(s->b, s->dev_data[0], s->pinned[0], m->rows * s->row, &t));
    }
    CL_TRY(o->kv_move_rows(s->b, s->pools_dev, (int64_t)s->row, s->dev_map[0],
                           (int64_t)m->rows, s->dev_data[0], m->gather));
    if (m->gather)
        CL_TRY(o->download_async(s->b, s->pinned[0], s->dev_data[0], m->rows * s->row, &t));
    CL_TRY(o->transfer_wait(s->b, t));
    CL_TRY(o->sync(s->b));
    if (m->gather)
        cl_shard_copy(&segs, n, r, es, (int64_t)m->rows, m->data, s->pinned[0], 1);
    return CL_OK;
}

static int move_sharded(cl_kv_pump *p, char *data, cl_kv_row *map, size_t rows, int gather)
{
    rank_move m = {p, data, map, rows, gather};
    return cl_ranks_run(p->c->ranks, move_rank, &m, NULL);
}

/* Uploads chunk j with its row map and moves its rows to their pages. */
static int issue_chunk(cl_kv_pump *p, uint64_t j)
{
    const cl_backend_ops *o = p->b->ops;
    uint64_t len = chunk_len(p, j);
    size_t rows = (size_t)(len / p->row);
    int slot = (int)(j % (uint64_t)p->ring), d = (int)(j % 2);
    fill_map(p, j * p->chunk / p->row, rows, p->maps[slot]);
    if (p->sub)
        return move_sharded(p, p->pinned[slot], p->maps[slot], rows, 0);
    uint64_t t;
    CL_TRY(o->upload_async(p->b, p->dev_data[d], p->pinned[slot], (size_t)len, &t));
    CL_TRY(o->upload_async(p->b, p->dev_map[d], p->maps[slot], rows * sizeof(cl_kv_row), &t));
    CL_TRY(o->kv_move_rows(p->b, p->pools_dev, (int64_t)p->row, p->dev_map[d], (int64_t)rows,
                           p->dev_data[d], 0));
    p->tickets[slot] = t;
    return CL_OK;
}

/* Chunks [freed, upto) are done with their staging: the producers may reuse it. */
static int release_upto(cl_kv_pump *p, uint64_t upto)
{
    if (upto == 0 || upto <= p->freed)
        return CL_OK;
    if (!p->sub) /* sharded: every chunk was waited for as it moved */
        CL_TRY(p->b->ops->transfer_wait(p->b, p->tickets[(upto - 1) % (uint64_t)p->ring]));
    pthread_mutex_lock(&p->mu);
    p->freed = upto;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return CL_OK;
}

static int drain(cl_kv_pump *p)
{
    /* a chunk's staging is reused only after its upload ended: keep a few in flight */
    uint64_t lookahead = p->ring > 4 ? (uint64_t)p->ring / 2 : 1;
    for (uint64_t j = 0; j < p->n_chunks; j++) {
        pthread_mutex_lock(&p->mu);
        while (!p->failed && !p->producer_done && p->filled[j] < chunk_len(p, j))
            pthread_cond_wait(&p->cv, &p->mu);
        int failed = p->failed, short_stream = p->filled[j] < chunk_len(p, j);
        pthread_mutex_unlock(&p->mu);
        if (failed)
            return cl_err(failed, "%s", p->fail_msg);
        if (short_stream)
            return cl_err(CL_ERR_CORRUPT, "state stream ended before its KV bytes (chunk %llu)",
                          (unsigned long long)j);
        CL_TRY(issue_chunk(p, j));
        if (j + 1 > lookahead)
            CL_TRY(release_upto(p, j + 1 - lookahead));
    }
    return release_upto(p, p->n_chunks);
}

int cl_kv_pump_run(cl_kv_pump *p, const cl_kv_range *kv, int n_kv, const cl_side_range *side,
                   int n_side, cl_kv_produce_fn produce, void *user)
{
    if (n_kv > 0 && !p->row)
        return cl_err(CL_ERR_ARG, "state stream: KV ranges for a model without attention");
    p->kv_base = calloc((size_t)n_kv + 1, sizeof *p->kv_base);
    if (!p->kv_base)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_kv; i++) {
        if (i && kv[i].offset < kv[i - 1].offset + (p->kv_base[i] - p->kv_base[i - 1])) {
            free(p->kv_base);
            p->kv_base = NULL;
            return cl_err(CL_ERR_ARG, "state stream: KV ranges overlap or are not sorted");
        }
        p->kv_base[i + 1] = p->kv_base[i] + 2 * (uint64_t)p->c->n_attn * (uint64_t)kv[i].n * p->row;
    }
    p->kv = kv;
    p->n_kv = n_kv;
    p->kv_total = p->kv_base[n_kv];
    p->side = side;
    p->n_side = n_side;
    p->n_chunks = (p->kv_total + p->chunk - 1) / p->chunk;
    p->filled = calloc((size_t)p->n_chunks + 1, sizeof *p->filled);
    p->freed = 0;
    p->failed = 0;
    p->fail_msg[0] = 0;
    p->producer_done = 0;
    p->producer_rc = CL_OK;
    p->produce = produce;
    p->user = user;
    int rc = p->filled ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK && p->kv_total)
        rc = prepare(p);
    pthread_t tid;
    int started = 0;
    if (rc == CL_OK) {
        if (pthread_create(&tid, NULL, producer_main, p) != 0)
            rc = cl_err(CL_ERR_INTERNAL, "cannot start a thread");
        else
            started = 1;
    }
    if (rc == CL_OK)
        rc = drain(p);
    if (rc != CL_OK)
        fail(p, rc); /* wakes producers waiting for staging */
    if (started)
        pthread_join(tid, NULL);
    if (rc == CL_OK && p->producer_rc != CL_OK)
        rc = cl_err(p->producer_rc, "%s", p->fail_msg);
    if (rc == CL_OK && p->kv_total && !p->sub)
        rc = p->b->ops->sync(p->b); /* the rows are in their pages */
    free(p->kv_base);
    free(p->filled);
    p->kv_base = NULL;
    p->filled = NULL;
    p->kv = NULL;
    p->n_kv = 0;
    p->side = NULL;
    p->n_side = 0;
    return rc;
}

/* Parallel copy of one chunk out of the staging (bandwidth needs several threads). */
static void copy_out(char *dst, const char *src, size_t n)
{
    const size_t piece = (size_t)1 << 20;
    int64_t pieces = (int64_t)((n + piece - 1) / piece);
#pragma omp parallel for schedule(static) if (pieces > 4)
    for (int64_t i = 0; i < pieces; i++) {
        size_t off = (size_t)i * piece, len = n - off < piece ? n - off : piece;
        memcpy(dst + off, src + off, len);
    }
}

int cl_kv_pump_read(cl_kv_pump *p, const cl_seq *s, int64_t t0, int64_t n, void *host)
{
    if (n <= 0 || !p->c->n_attn)
        return CL_OK;
    cl_kv_range r = {0, (cl_seq *)s, t0, n};
    uint64_t base[2] = {0, 2 * (uint64_t)p->c->n_attn * (uint64_t)n * p->row};
    p->kv = &r;
    p->n_kv = 1;
    p->kv_base = base;
    p->kv_total = base[1];
    p->n_chunks = (p->kv_total + p->chunk - 1) / p->chunk;
    int rc = prepare(p);
    const cl_backend_ops *o = p->b->ops;
    for (uint64_t j = 0; p->sub && j < p->n_chunks && rc == CL_OK; j++) {
        /* sharded: each rank gathers its heads of the chunk's rows into host */
        uint64_t len = chunk_len(p, j);
        fill_map(p, j * p->chunk / p->row, (size_t)(len / p->row), p->maps[0]);
        rc = move_sharded(p, (char *)host + j * p->chunk, p->maps[0], (size_t)(len / p->row), 1);
    }
    for (uint64_t j = 0; !p->sub && j <= p->n_chunks && rc == CL_OK; j++) {
        if (j < p->n_chunks) { /* gather chunk j and start its download */
            uint64_t len = chunk_len(p, j);
            size_t rows = (size_t)(len / p->row);
            int slot = (int)(j % (uint64_t)p->ring), d = (int)(j % 2);
            uint64_t t;
            fill_map(p, j * p->chunk / p->row, rows, p->maps[slot]);
            rc = o->upload_async(p->b, p->dev_map[d], p->maps[slot], rows * sizeof(cl_kv_row), &t);
            if (rc == CL_OK)
                rc = o->kv_move_rows(p->b, p->pools_dev, (int64_t)p->row, p->dev_map[d],
                                     (int64_t)rows, p->dev_data[d], 1);
            if (rc == CL_OK)
                rc = o->download_async(p->b, p->pinned[slot], p->dev_data[d], (size_t)len,
                                       &p->tickets[slot]);
        }
        if (rc == CL_OK && j > 0) { /* copy chunk j - 1 out while chunk j is on the bus */
            uint64_t k = j - 1;
            int slot = (int)(k % (uint64_t)p->ring);
            rc = o->transfer_wait(p->b, p->tickets[slot]);
            if (rc == CL_OK)
                copy_out((char *)host + k * p->chunk, p->pinned[slot], (size_t)chunk_len(p, k));
        }
    }
    p->kv = NULL;
    p->n_kv = 0;
    p->kv_base = NULL;
    return rc;
}

/* ---- the cache's pump and host-memory sources ---- */

static void pump_free_hook(void *p) { cl_kv_pump_free(p); }

int cl_kv_pump_of(cl_cache *c, cl_kv_pump **out)
{
    if (!c->io) {
        cl_kv_pump *p;
        CL_TRY(cl_kv_pump_create(c, 0, 0, &p));
        c->io = p;
        c->io_free = pump_free_hook;
    }
    *out = c->io;
    return CL_OK;
}

typedef struct {
    const char *src;
    uint64_t bytes;
} host_source;

/* Writes the whole source, several threads taking 1 MiB pieces in ascending order. */
static int produce_from_host(void *user, cl_kv_pump *p)
{
    const host_source *h = user;
    const uint64_t piece = (uint64_t)1 << 20;
    int64_t pieces = (int64_t)((h->bytes + piece - 1) / piece);
    int rc = CL_OK;
#pragma omp parallel for schedule(dynamic, 1) if (pieces > 4)
    for (int64_t i = 0; i < pieces; i++) {
        uint64_t off = (uint64_t)i * piece, len = h->bytes - off < piece ? h->bytes - off : piece;
        int r = cl_kv_pump_write(p, off, h->src + off, (size_t)len);
        if (r != CL_OK) {
#pragma omp critical
            rc = r;
        }
    }
    return rc;
}

int cl_kv_pump_host_buffer(cl_kv_pump *p, size_t bytes, void **out)
{
    if (bytes > p->host_buf_bytes) {
        if (p->host_buf)
            p->b->ops->host_free(p->b, p->host_buf);
        p->host_buf_bytes = 0;
        p->host_buf = p->b->ops->host_alloc(p->b, bytes);
        if (!p->host_buf)
            return cl_err(CL_ERR_NOMEM, "out of page-locked memory for %zu bytes", bytes);
        p->host_buf_bytes = bytes;
    }
    *out = p->host_buf;
    return CL_OK;
}

int cl_kv_write_host(cl_seq *s, int64_t t0, int64_t n, const void *host)
{
    if (n <= 0 || !s->c->n_attn)
        return CL_OK;
    CL_TRY(cl_seq_reserve(s, t0 + n));
    cl_kv_pump *p;
    CL_TRY(cl_kv_pump_of(s->c, &p));
    cl_kv_range r = {0, s, t0, n};
    host_source h = {host, 2 * (uint64_t)s->c->n_attn * (uint64_t)n * kv_row_bytes(s->c)};
    return cl_kv_pump_run(p, &r, 1, NULL, 0, produce_from_host, &h);
}

int cl_kv_read_host(const cl_seq *s, int64_t t0, int64_t n, void *host)
{
    cl_kv_pump *p;
    CL_TRY(cl_kv_pump_of(s->c, &p));
    return cl_kv_pump_read(p, s, t0, n, host);
}
