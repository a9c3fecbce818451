/* state_load.c - see state_load.h. */
#include "engine/state_load.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/kv_io.h"
#include "engine/state.h"

int cl_state_io_threads(int want)
{
    if (want > 0)
        return want > 256 ? 256 : want;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

typedef struct {
    cl_store_txn *txn;
    cl_store_kind kind;
    const cl_key *key;
    int threads;
    size_t chunk;
} stream_src;

static int sink_to_pump(void *user, uint64_t offset, const void *data, size_t bytes)
{
    return cl_kv_pump_write(user, offset, data, bytes);
}

/* Producer: the value's verified chunks, from `threads` threads, into the pump. */
static int produce_stream(void *user, cl_kv_pump *p)
{
    stream_src *src = user;
    cl_store_stream_opts o;
    memset(&o, 0, sizeof o);
    o.threads = src->threads;
    o.chunk_bytes = src->chunk;
    o.sink = sink_to_pump;
    o.user = p;
    cl_store_value v;
    return cl_store_stream(src->txn, src->kind, src->key, &o, &v);
}

int cl_state_load_stored(cl_store *st, cl_store_kind kind, const cl_key *key, cl_seq *s,
                         int64_t kv_from, int threads, const char *what)
{
    cl_cache *c = s->c;
    cl_store_txn *txn;
    CL_TRY(cl_store_txn_begin(st, &txn));
    cl_store_value v;
    int rc = cl_store_peek(txn, kind, key, &v);
    /* the payload's plan, from the entry (its tokens = the state's KV slots) and what the
     * caller stored: header | KV [kv_from, kv_len) | SSM */
    const uint64_t hdr = sizeof(cl_state_header);
    int64_t kv_len = rc == CL_OK ? v.info.tokens : 0;
    if (rc == CL_OK && (kv_from < 0 || kv_from > kv_len))
        rc = cl_err(CL_ERR_CORRUPT, "%s: stored state of %lld slots, expected at least %lld",
                    what, (long long)kv_len, (long long)kv_from);
    uint64_t kv_bytes = rc == CL_OK ? cl_state_kv_bytes(c, kv_len - kv_from) : 0, ssm_bytes = 0;
    if (rc == CL_OK) {
        if (v.payload_bytes < hdr + kv_bytes)
            rc = cl_err(CL_ERR_CORRUPT, "%s: stored state is smaller than its KV (%llu bytes)",
                        what, (unsigned long long)v.payload_bytes);
        else
            ssm_bytes = v.payload_bytes - hdr - kv_bytes;
        if (rc == CL_OK && ssm_bytes != cl_state_ssm_bytes(c, 0) &&
            ssm_bytes != cl_state_ssm_bytes(c, 1))
            rc = cl_err(CL_ERR_FORMAT, "%s: stored state does not fit this model (its SSM part "
                                       "has %llu bytes)",
                        what, (unsigned long long)ssm_bytes);
    }
    cl_state_header h;
    void *ssm = NULL; /* the pump's page-locked buffer: the SSM states upload at bus speed */
    if (rc == CL_OK)
        rc = cl_seq_reserve(s, kv_len);
    cl_kv_pump *pump = NULL;
    if (rc == CL_OK)
        rc = cl_kv_pump_of(c, &pump);
    if (rc == CL_OK)
        rc = cl_kv_pump_host_buffer(pump, ssm_bytes ? ssm_bytes : 1, &ssm);
    if (rc == CL_OK) {
        cl_kv_range r = {hdr, s, kv_from, kv_len - kv_from};
        cl_side_range side[2] = {{0, hdr, &h}, {hdr + kv_bytes, ssm_bytes, ssm}};
        stream_src src = {txn, kind, key, cl_state_io_threads(threads), (size_t)4 << 20};
        rc = cl_kv_pump_run(pump, &r, kv_bytes ? 1 : 0, side, 2, produce_stream, &src);
    }
    cl_store_txn_end(txn);
    if (rc == CL_OK)
        rc = cl_state_check_header(s, &h, what);
    if (rc == CL_OK && (h.kv_from != kv_from || h.kv_len != kv_len))
        rc = cl_err(CL_ERR_CORRUPT, "%s: stored state covers other slots than its entry says",
                    what);
    if (rc == CL_OK)
        rc = cl_state_finish_restore(s, &h, ssm);
    return rc;
}

/* ---- KV blocks: many small values, several at a time ---- */

typedef struct {
    cl_store *st;
    const cl_key *keys;
    int64_t n;
    uint64_t block_bytes;
    int threads;
} blocks_src;

/* A block's bytes go to its place in the stream: block i starts at i * block_bytes. */
typedef struct {
    cl_kv_pump *p;
    uint64_t base;
} block_sink;

static int sink_block(void *user, uint64_t offset, const void *data, size_t bytes)
{
    block_sink *b = user;
    return cl_kv_pump_write(b->p, b->base + offset, data, bytes);
}

/* Each thread, with a read transaction of its own, takes the next block (ascending),
 * checks its segments and hands them to the pump. */
static int produce_blocks(void *user, cl_kv_pump *p)
{
    blocks_src *b = user;
    int rc = CL_OK;
#pragma omp parallel num_threads(b->threads)
    {
        cl_store_txn *txn = NULL;
        int r = cl_store_txn_begin(b->st, &txn);
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < b->n; i++) {
            if (r != CL_OK)
                continue;
            block_sink bs = {p, (uint64_t)i * b->block_bytes};
            cl_store_stream_opts o;
            memset(&o, 0, sizeof o);
            o.threads = 1;
            o.chunk_bytes = (size_t)1 << 20;
            o.sink = sink_block;
            o.user = &bs;
            cl_store_value v;
            r = cl_store_peek(txn, CL_STORE_KV, &b->keys[i], &v);
            if (r == CL_OK && v.payload_bytes != b->block_bytes)
                r = cl_err(CL_ERR_CORRUPT, "%s: KV block of unexpected size",
                           cl_store_dir(b->st));
            if (r == CL_OK)
                r = cl_store_stream(txn, CL_STORE_KV, &b->keys[i], &o, &v);
        }
        if (r != CL_OK) {
#pragma omp critical
            rc = rc ? rc : r;
        }
        if (txn)
            cl_store_txn_end(txn);
    }
    return rc;
}

int cl_state_load_blocks(cl_store *st, const cl_key *keys, int64_t n, int64_t block_tokens,
                         cl_seq *s, int threads)
{
    if (n <= 0 || !s->c->n_attn)
        return CL_OK;
    CL_TRY(cl_seq_reserve(s, n * block_tokens));
    cl_kv_pump *pump;
    CL_TRY(cl_kv_pump_of(s->c, &pump));
    cl_kv_range *r = malloc((size_t)n * sizeof *r);
    if (!r)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    uint64_t bb = cl_state_kv_bytes(s->c, block_tokens);
    for (int64_t i = 0; i < n; i++)
        r[i] = (cl_kv_range){(uint64_t)i * bb, s, i * block_tokens, block_tokens};
    blocks_src src = {st, keys, n, bb, cl_state_io_threads(threads)};
    int rc = cl_kv_pump_run(pump, r, (int)n, NULL, 0, produce_blocks, &src);
    free(r);
    return rc;
}
