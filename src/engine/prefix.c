#include "engine/prefix.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/model_id.h"
#include "engine/state.h"
#include "engine/state_load.h"

typedef struct {
    uint32_t version, state_version, kv_dtype, pad;
    int64_t gka_num_iter;
} prefix_settings;

void cl_prefix_opts_default(cl_prefix_opts *o)
{
    memset(o, 0, sizeof *o);
    o->block_tokens = CL_PREFIX_BLOCK_TOKENS;
}

int cl_prefix_create(cl_store *st, cl_model *m, cl_cache *c, const cl_prefix_opts *o,
                     cl_prefix **out)
{
    cl_prefix_opts def;
    if (!o) {
        cl_prefix_opts_default(&def);
        o = &def;
    }
    if (o->block_tokens < 0 || o->block_tokens > (1 << 20))
        return cl_err(CL_ERR_ARG, "block_tokens must be in [1, %d] (got %lld)", 1 << 20,
                      (long long)o->block_tokens);
    if (o->snapshot_every < 0)
        return cl_err(CL_ERR_ARG, "snapshot_every must be >= 0 (got %lld)",
                      (long long)o->snapshot_every);
    if (o->gpu_tier_bytes || o->host_tier_bytes || o->write_behind)
        return cl_err(CL_ERR_UNSUPPORTED, "hot tiers and write-behind are not yet supported");
    cl_prefix *p = calloc(1, sizeof *p);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    p->st = st;
    p->m = m;
    p->c = c;
    p->o = *o;
    p->block_tokens = o->block_tokens > 0 ? o->block_tokens : CL_PREFIX_BLOCK_TOKENS;
    p->snapshot_every = o->snapshot_every;
    int rc = cl_model_id(m, st, &p->model_id);
    if (rc != CL_OK) {
        free(p);
        return rc;
    }
    prefix_settings s = {1, CL_STATE_VERSION, (uint32_t)c->kv_dtype, 0, m->gka_num_iter};
    cl_key_chain_root(&p->model_id, &s, sizeof s, &p->k0);
    *out = p;
    return CL_OK;
}

void cl_prefix_free(cl_prefix *p)
{
    free(p);
}

int cl_prefix_flush(cl_prefix *p)
{
    (void)p; /* writes are synchronous: nothing is ever pending */
    return CL_OK;
}

void cl_prefix_stats_get(const cl_prefix *p, cl_prefix_stats *out) { *out = p->stats; }

int cl_prefix_store(cl_prefix *p, const cl_seq *s, const int32_t *ids, int64_t n)
{
    cl_prefix_capture cap;
    CL_TRY(cl_prefix_capture_now(p, s, &cap));
    int rc = cl_prefix_save(p, s, ids, n, &cap, 1);
    cl_prefix_capture_free(&cap);
    return rc;
}

/* Key of the snapshot at position pos, given K[i] = key after block i (K[0] = k0). */
static void snap_key(const cl_prefix *p, const cl_key *K, const int32_t *ids, int64_t pos,
                     cl_key *out)
{
    int64_t B = p->block_tokens, i = pos / B, r = pos % B;
    if (r == 0)
        *out = K[i];
    else
        cl_key_chain_next(&K[i], ids + i * B, (size_t)r, out);
}

/* Restores KV blocks 1..i and the snapshot at pos, streamed at bus speed;
 * CL_ERR_NOTFOUND / CL_ERR_CORRUPT when an entry is missing or bad (the caller tries a
 * shorter prefix). */
static int try_restore(cl_prefix *p, cl_seq *s, const cl_key *K, const int32_t *ids, int64_t pos)
{
    int64_t B = p->block_tokens, nblk = pos / B;
    if (s->c->n_attn)
        CL_TRY(cl_state_load_blocks(p->st, K + 1, nblk, B, s, p->o.io_threads));
    cl_key key;
    snap_key(p, K, ids, pos, &key);
    CL_TRY(cl_state_load_stored(p->st, CL_STORE_SNAP, &key, s, nblk * B, p->o.io_threads,
                                "stored snapshot", NULL, NULL));
    if (s->kv_len != pos || s->pos != pos)
        return cl_err(CL_ERR_CORRUPT, "%s: snapshot describes another position",
                      cl_store_dir(p->st));
    return CL_OK;
}

int cl_prefix_restore(cl_prefix *p, cl_seq *s, const int32_t *ids, int64_t n_max,
                      int64_t *cached)
{
    *cached = 0;
    if (n_max <= 0)
        return CL_OK;
    double t_start = cl_now();
    int64_t B = p->block_tokens, m = n_max / B;
    cl_key *K = malloc((size_t)(m + 1) * sizeof *K);
    if (!K)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    K[0] = p->k0;
    cl_key_chain(&p->k0, ids, (size_t)n_max, (size_t)B, K + 1, (size_t)m);
    cl_store_txn *txn;
    int rc = cl_store_txn_begin(p->st, &txn);
    if (rc != CL_OK) {
        cl_log_warn("%s (store not used)", cl_errmsg());
        free(K);
        return CL_OK;
    }
    size_t d = 0;
    if (s->c->n_attn)
        cl_store_count_prefix(txn, CL_STORE_KV, K + 1, (size_t)m, &d);
    else
        d = (size_t)m; /* no attention layers: no KV blocks to need */
    int attempts = 0;
    for (int64_t i = (int64_t)d; i >= 0 && !*cached && attempts < 4; i--) {
        int64_t hi = (i + 1) * B - 1 < n_max ? (i + 1) * B - 1 : n_max;
        for (int64_t pos = hi; pos >= i * B && pos > 0 && !*cached; pos--) {
            cl_key key;
            snap_key(p, K, ids, pos, &key);
            if (cl_store_has(txn, CL_STORE_SNAP, &key) != CL_OK)
                continue;
            attempts++;
            int r = try_restore(p, s, K, ids, pos);
            if (r == CL_OK) {
                *cached = pos;
            } else if (r == CL_ERR_NOTFOUND || r == CL_ERR_CORRUPT || r == CL_ERR_FORMAT) {
                cl_log_warn("%s; recomputing those tokens", cl_errmsg());
                if ((rc = cl_seq_reset(s)) != CL_OK)
                    break;
                if (attempts >= 4)
                    break;
            } else {
                rc = r;
                break;
            }
        }
        if (rc != CL_OK)
            break;
    }
    cl_store_txn_end(txn);
    free(K);
    if (rc == CL_OK && *cached) {
        cl_log_info("prefix cache: resumed at %lld of %lld tokens in %.3f s", (long long)*cached,
                    (long long)n_max, cl_now() - t_start);
        p->stats.restores++;
        p->stats.restored_tokens += (uint64_t)*cached;
        p->stats.hits_store++;
    }
    p->stats.restore_s += cl_now() - t_start;
    return rc;
}

int cl_prefix_capture_now(const cl_prefix *p, const cl_seq *s, cl_prefix_capture *cap)
{
    memset(cap, 0, sizeof *cap);
    if (s->kv_len != s->pos)
        return cl_err(CL_ERR_ARG, "prefix cache: a composed state cannot be captured");
    cap->pos = s->pos;
    int64_t from = s->pos / p->block_tokens * p->block_tokens;
    return cl_state_snapshot(s, from, &cap->bytes, &cap->len);
}

void cl_prefix_capture_free(cl_prefix_capture *cap)
{
    free(cap->bytes);
    memset(cap, 0, sizeof *cap);
}

int cl_prefix_save(cl_prefix *p, const cl_seq *s, const int32_t *ids, int64_t n,
                   cl_prefix_capture *caps, int n_caps)
{
    if (n > s->kv_len || s->kv_len != s->pos)
        return CL_OK; /* nothing this state can vouch for */
    int64_t B = p->block_tokens, m = n / B;
    size_t blk_bytes = cl_state_kv_bytes(s->c, B);
    cl_key *K = malloc((size_t)(m + 1) * sizeof *K);
    char *kv = s->c->n_attn && m ? malloc(blk_bytes * (size_t)m) : NULL;
    cl_store_batch *b = NULL;
    int rc = K && (kv || !s->c->n_attn || !m) ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK) {
        K[0] = p->k0;
        cl_key_chain(&p->k0, ids, (size_t)n, (size_t)B, K + 1, (size_t)m);
        rc = cl_store_batch_begin(p->st, &b);
    }
    if (rc == CL_OK && s->c->n_attn && m) {
        /* only the blocks not stored yet */
        cl_store_txn *txn;
        size_t have = 0;
        if (cl_store_txn_begin(p->st, &txn) == CL_OK) {
            cl_store_count_prefix(txn, CL_STORE_KV, K + 1, (size_t)m, &have);
            cl_store_txn_end(txn);
        }
        for (int64_t j = (int64_t)have + 1; j <= m && rc == CL_OK; j++) {
            char *dst = kv + blk_bytes * (size_t)(j - 1);
            rc = cl_state_read_kv(s, (j - 1) * B, B, dst);
            cl_store_info info = {0};
            info.dtype = (uint8_t)s->c->kv_dtype;
            info.tokens = B;
            cl_store_piece piece = {dst, blk_bytes};
            if (rc == CL_OK)
                rc = cl_store_batch_put(b, CL_STORE_KV, &K[j], &info, &piece, 1,
                                        CL_STORE_PUT_NOOVERWRITE);
        }
    }
    for (int i = 0; i < n_caps && rc == CL_OK; i++) {
        if (caps[i].pos <= 0 || caps[i].pos > n || !caps[i].bytes)
            continue;
        cl_key key;
        snap_key(p, K, ids, caps[i].pos, &key);
        cl_store_info info = {0};
        info.dtype = (uint8_t)s->c->kv_dtype;
        info.tokens = caps[i].pos;
        cl_store_piece piece = {caps[i].bytes, caps[i].len};
        rc = cl_store_batch_put(b, CL_STORE_SNAP, &key, &info, &piece, 1, 0);
    }
    if (rc == CL_OK) {
        rc = cl_store_batch_commit(b);
        b = NULL;
    }
    if (b)
        cl_store_batch_abort(b);
    free(K);
    free(kv);
    if (rc != CL_OK && rc != CL_ERR_NOMEM) {
        cl_log_warn("%s (state not stored)", cl_errmsg());
        rc = CL_OK;
    }
    return rc;
}
