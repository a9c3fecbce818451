#include "engine/prefix.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/model_id.h"
#include "engine/state.h"
#include "engine/state_load.h"
#include "engine/tiers.h"

typedef struct {
    uint32_t version, state_version, kv_dtype, pad;
    int64_t gka_num_iter;
} prefix_settings;

void cl_prefix_opts_default(cl_prefix_opts *o)
{
    memset(o, 0, sizeof *o);
    o->block_tokens = CL_PREFIX_BLOCK_TOKENS;
    o->write_behind = 1;
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
    p->readonly = cl_store_readonly(st) != NULL;
    atomic_init(&p->store_errors, 0);
    if (!p->readonly && o->write_behind)
        rc = cl_store_writer_open(st, NULL, &p->writer);
    if (rc == CL_OK && (o->gpu_tier_bytes || o->host_tier_bytes))
        rc = cl_tiers_create(c, o->gpu_tier_bytes, o->host_tier_bytes, o->gpu_tier_max_states,
                             &p->tiers);
    if (rc != CL_OK) {
        cl_prefix_free(p);
        return rc;
    }
    *out = p;
    return CL_OK;
}

void cl_prefix_free(cl_prefix *p)
{
    if (!p)
        return;
    if (p->writer && cl_store_writer_close(p->writer) != CL_OK)
        cl_log_warn("%s", cl_errmsg());
    cl_tiers_free(p->tiers);
    free(p);
}

int cl_prefix_flush(cl_prefix *p)
{
    if (!p->writer)
        return CL_OK; /* synchronous puts: nothing is pending */
    double t0 = cl_now();
    int rc = cl_store_writer_flush(p->writer);
    p->stats.store_wait_s += cl_now() - t0;
    return rc;
}

void cl_prefix_stats_get(const cl_prefix *p, cl_prefix_stats *out)
{
    *out = p->stats;
    cl_tiers_usage(p->tiers, &out->gpu_bytes, &out->host_bytes, &out->gpu_states,
                   &out->host_states);
    out->store_errors = (uint64_t)atomic_load(&((cl_prefix *)p)->store_errors);
}

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
                                "stored snapshot"));
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
    /* the hot tiers: the deepest snapshot of this prompt they hold */
    cl_key tk;
    int64_t tpos, best = 0;
    for (int i = 0; p->tiers && cl_tiers_entry(p->tiers, CL_STORE_SNAP, i, &tk, &tpos); i++) {
        cl_key want;
        if (tpos <= best || tpos > n_max)
            continue;
        snap_key(p, K, ids, tpos, &want);
        if (cl_key_eq(&want, &tk))
            best = tpos;
    }
    if (best) {
        cl_key key;
        snap_key(p, K, ids, best, &key);
        cl_tier tier;
        int r = cl_tiers_restore(p->tiers, CL_STORE_SNAP, &key, s, &tier);
        if (r == CL_OK && tier != CL_TIER_NONE) {
            *cached = best;
            p->stats.restores++;
            p->stats.restored_tokens += (uint64_t)best;
            if (tier == CL_TIER_GPU)
                p->stats.hits_gpu++;
            else
                p->stats.hits_host++;
            p->stats.restore_s += cl_now() - t_start;
            cl_log_info("prefix cache: resumed at %lld of %lld tokens from the %s tier in %.3f s",
                        (long long)best, (long long)n_max, tier == CL_TIER_GPU ? "GPU" : "host",
                        cl_now() - t_start);
            free(K);
            return CL_OK;
        }
        if (r != CL_OK && (r = cl_seq_reset(s)) != CL_OK) {
            free(K);
            return r;
        }
    }
    /* states this process queued must be visible to its own lookups (the hot tiers,
     * when enabled, answered above without waiting) */
    if (p->writer && cl_prefix_flush(p) != CL_OK)
        cl_log_warn("%s (earlier states not stored)", cl_errmsg());
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

/* ---- storing: the writer thread commits behind the caller ---- */

/* A buffer shared by several queued puts, freed by the last one's completion. */
typedef struct {
    void *buf;
    atomic_int refs;
    cl_prefix *p;
} shared_buf;

static void put_done(void *user, uint64_t ticket, int status, const char *message)
{
    (void)ticket;
    shared_buf *b = user;
    if (status != CL_OK) {
        atomic_fetch_add(&b->p->store_errors, 1);
        cl_log_warn("%s (state not stored)", message ? message : "store write failed");
    }
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        free(b->buf);
        free(b);
    }
}

/* Queues (write-behind) or batches one put; `buf` (may be NULL) is released when every
 * put holding it is done (shared), or by the caller when puts are synchronous. */
static int put_value(cl_prefix *p, cl_store_batch *batch, shared_buf *owner, cl_store_kind kind,
                     const cl_key *key, const cl_store_info *info, const cl_store_piece *pieces,
                     size_t n, unsigned flags, uint64_t *ticket)
{
    if (!p->writer)
        return cl_store_batch_put(batch, kind, key, info, pieces, n, flags);
    atomic_fetch_add(&owner->refs, 1);
    int rc = cl_store_writer_put(p->writer, kind, key, info, pieces, n, flags, put_done, owner,
                                 ticket);
    if (rc != CL_OK)
        atomic_fetch_sub(&owner->refs, 1); /* not queued: done will not run */
    return rc;
}

static shared_buf *shared_new(cl_prefix *p, void *buf)
{
    shared_buf *b = malloc(sizeof *b);
    if (b) {
        b->buf = buf;
        atomic_init(&b->refs, 1); /* the caller's reference */
        b->p = p;
    }
    return b;
}

static void shared_drop(shared_buf *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
        free(b->buf);
        free(b);
    }
}

int cl_prefix_save(cl_prefix *p, const cl_seq *s, const int32_t *ids, int64_t n,
                   cl_prefix_capture *caps, int n_caps)
{
    if (p->readonly || n > s->kv_len || s->kv_len != s->pos)
        return CL_OK; /* nothing to write, or nothing this state can vouch for */
    const cl_cache *c = s->c;
    int64_t B = p->block_tokens, m = n / B;
    cl_key *K = malloc((size_t)(m + 1) * sizeof *K);
    cl_store_batch *batch = NULL;
    shared_buf *kvb = NULL;
    int n_caps_store = n_caps;
    int rc = K ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK) {
        K[0] = p->k0;
        cl_key_chain(&p->k0, ids, (size_t)n, (size_t)B, K + 1, (size_t)m);
        if (!p->writer)
            rc = cl_store_batch_begin(p->st, &batch);
    }
    size_t have = 0;
    if (rc == CL_OK && c->n_attn && m) { /* only the blocks not stored yet */
        cl_store_txn *txn;
        if (cl_store_txn_begin(p->st, &txn) == CL_OK) {
            cl_store_count_prefix(txn, CL_STORE_KV, K + 1, (size_t)m, &have);
            cl_store_txn_end(txn);
        }
    }
    int64_t nb = c->n_attn ? m - (int64_t)have : 0;
    if (rc == CL_OK && p->writer && p->o.never_wait) {
        /* what the puts would queue: the new blocks and the captures */
        uint64_t bytes = (uint64_t)cl_state_kv_bytes(c, nb * B);
        for (int i = 0; i < n_caps; i++)
            bytes += caps[i].bytes ? caps[i].len : 0;
        if (bytes && cl_store_writer_would_wait(p->writer, bytes)) {
            p->stats.skipped_saves++;
            nb = 0;
            n_caps_store = 0; /* (the hot tiers below still take the state) */
        }
    }
    if (rc == CL_OK && nb > 0) {
        /* the new blocks' KV in one gather: [pool][nb * B rows]; block j's value is the
         * pieces of each pool's rows [j * B, (j + 1) * B) */
        size_t row = cl_state_kv_bytes(c, 1) / (2 * (size_t)c->n_attn);
        size_t pool_bytes = (size_t)nb * (size_t)B * row;
        void *buf = malloc(2 * (size_t)c->n_attn * pool_bytes);
        kvb = buf ? shared_new(p, buf) : NULL;
        if (!kvb) {
            free(buf);
            rc = cl_err(CL_ERR_NOMEM, "out of memory for %lld KV blocks", (long long)nb);
        }
        if (rc == CL_OK)
            rc = cl_state_read_kv(s, (int64_t)have * B, nb * B, buf);
        cl_store_piece *pieces = malloc(2 * (size_t)c->n_attn * sizeof *pieces);
        if (rc == CL_OK && !pieces)
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
        for (int64_t j = 0; j < nb && rc == CL_OK; j++) {
            for (int pl = 0; pl < 2 * c->n_attn; pl++)
                pieces[pl] = (cl_store_piece){(char *)buf + (size_t)pl * pool_bytes +
                                                  (size_t)(j * B) * row,
                                              (size_t)B * row};
            cl_store_info info = {0};
            info.dtype = (uint8_t)c->kv_dtype;
            info.tokens = B;
            rc = put_value(p, batch, kvb, CL_STORE_KV, &K[(int64_t)have + 1 + j], &info, pieces,
                           2 * (size_t)c->n_attn, CL_STORE_PUT_NOOVERWRITE, NULL);
        }
        free(pieces);
    }
    for (int i = 0; i < n_caps_store && rc == CL_OK; i++) {
        if (caps[i].pos <= 0 || caps[i].pos > n || !caps[i].bytes)
            continue;
        cl_key key;
        snap_key(p, K, ids, caps[i].pos, &key);
        cl_store_info info = {0};
        info.dtype = (uint8_t)c->kv_dtype;
        info.tokens = caps[i].pos;
        cl_store_piece piece = {caps[i].bytes, caps[i].len};
        if (p->writer) { /* the writer frees the snapshot when it is done */
            shared_buf *sb = shared_new(p, caps[i].bytes);
            if (!sb) {
                rc = cl_err(CL_ERR_NOMEM, "out of memory");
                break;
            }
            caps[i].bytes = NULL;
            rc = put_value(p, batch, sb, CL_STORE_SNAP, &key, &info, &piece, 1, 0, NULL);
            shared_drop(sb);
        } else {
            rc = cl_store_batch_put(batch, CL_STORE_SNAP, &key, &info, &piece, 1, 0);
        }
    }
    if (rc == CL_OK && batch) {
        rc = cl_store_batch_commit(batch);
        batch = NULL;
    }
    /* the state at its own position goes to the hot tiers too: the next turn of a
     * conversation (or the same prompt) resumes there without waiting for the store */
    for (int i = 0; rc == CL_OK && p->tiers && i < n_caps; i++)
        if (caps[i].pos == s->pos && s->pos == n) {
            cl_key key;
            snap_key(p, K, ids, s->pos, &key);
            rc = cl_tiers_offer(p->tiers, CL_STORE_SNAP, &key, (cl_seq *)s, 0, NULL);
        }
    if (batch)
        cl_store_batch_abort(batch);
    shared_drop(kvb); /* synchronous puts are done; queued ones hold their references */
    free(K);
    if (rc != CL_OK && rc != CL_ERR_NOMEM) {
        cl_log_warn("%s (state not stored)", cl_errmsg());
        rc = CL_OK;
    }
    return rc;
}
