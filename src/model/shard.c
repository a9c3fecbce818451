/* shard.c - see shard.h. */
#include "model/shard.h"

#include <string.h>

#include "common/status.h"

int64_t cl_shard_heads(int64_t heads, int n) { return heads >= n ? heads / n : 1; }

int64_t cl_shard_first(int64_t heads, int n, int r)
{
    return heads >= n ? (int64_t)r * (heads / n) : (int64_t)r / (n / heads);
}

int cl_shard_owner(int64_t heads, int n, int r) { return heads >= n || r % (n / heads) == 0; }

int64_t cl_shard_width(const cl_shard_segs *s)
{
    int64_t w = 0;
    for (int i = 0; i < s->n; i++)
        w += s->heads[i] * s->unit[i];
    return w;
}

int64_t cl_shard_local_width(const cl_shard_segs *s, int n)
{
    int64_t w = 0;
    for (int i = 0; i < s->n; i++)
        w += cl_shard_heads(s->heads[i], n) * s->unit[i];
    return w;
}

void cl_shard_copy(const cl_shard_segs *s, int n, int r, size_t elem, int64_t rows,
                   void *full, void *local, int to_full)
{
    int64_t fw = cl_shard_width(s), lw = cl_shard_local_width(s, n);
    for (int64_t row = 0; row < rows; row++) {
        char *f = (char *)full + (size_t)(row * fw) * elem;
        char *l = (char *)local + (size_t)(row * lw) * elem;
        int64_t foff = 0, loff = 0;
        for (int i = 0; i < s->n; i++) {
            int64_t h = s->heads[i], u = s->unit[i];
            int64_t lh = cl_shard_heads(h, n), first = cl_shard_first(h, n, r);
            size_t bytes = (size_t)(lh * u) * elem;
            char *fp = f + (size_t)(foff + first * u) * elem, *lp = l + (size_t)loff * elem;
            if (!to_full)
                memcpy(lp, fp, bytes);
            else if (cl_shard_owner(h, n, r))
                memcpy(fp, lp, bytes);
            foff += h * u;
            loff += lh * u;
        }
    }
}

static int check_heads(const cl_config *cfg, const char *field, int64_t heads, int n,
                       int may_replicate)
{
    if (heads % n == 0 || (may_replicate && heads < n && n % heads == 0))
        return CL_OK;
    return cl_err(CL_ERR_UNSUPPORTED,
                  "%s: %s %lld does not split across %d tensor-parallel ranks%s: not yet "
                  "supported",
                  cfg->path ? cfg->path : "config", field, (long long)heads, n,
                  may_replicate ? " (a divisor or a multiple of it is needed)" : "");
}

int cl_shard_check(const cl_config *cfg, int n)
{
    if (n < 1)
        return cl_err(CL_ERR_ARG, "tp must be at least 1 (got %d)", n);
    if (n == 1)
        return CL_OK;
    for (int64_t l = 0; l < cfg->num_layers; l++)
        if (cfg->layer_types[l] == CL_LAYER_BMF)
            return cl_err(CL_ERR_UNSUPPORTED, "tensor parallelism with BMF layers is not yet "
                                              "supported");
    CL_TRY(check_heads(cfg, "num_attention_heads", cfg->num_heads, n, 0));
    CL_TRY(check_heads(cfg, "num_key_value_heads", cfg->num_kv_heads, n, 1));
    CL_TRY(check_heads(cfg, "intermediate_size", cfg->intermediate_size, n, 0));
    CL_TRY(check_heads(cfg, "vocab_size", cfg->vocab_size, n, 0));
    return CL_OK;
}

void cl_shard_config(const cl_config *cfg, int n, cl_config *local)
{
    *local = *cfg;
    local->num_heads = cl_shard_heads(cfg->num_heads, n);
    local->num_kv_heads = cl_shard_heads(cfg->num_kv_heads, n);
    local->intermediate_size = cfg->intermediate_size / n;
    cl_m2_config *m = &local->m2;
    int64_t D = cfg->head_dim;
    /* spec MODEL.md §7: d_inner = Hq x D, d_xb = Hkv x D, one dt per query head */
    m->d_inner = local->num_heads * D;
    m->d_xb = local->num_kv_heads * D;
    m->nheads = local->num_heads;
    m->ngroups = local->num_heads;
    m->conv_dim = m->d_inner + 2 * m->d_xb;
}

static void segs3(cl_shard_segs *s, int64_t h0, int64_t h1, int64_t h2, int64_t unit)
{
    *s = (cl_shard_segs){3, {h0, h1, h2}, {unit, unit, unit}};
}

void cl_shard_conv_segs(const cl_config *cfg, cl_layer_type t, cl_shard_segs *s)
{
    int64_t Hq = cfg->num_heads, Hkv = cfg->num_kv_heads, D = cfg->head_dim;
    if (t == CL_LAYER_M2)
        segs3(s, Hkv, Hkv, Hq, D); /* x | B | C */
    else
        segs3(s, Hq, Hkv, Hkv, D); /* q | k | v */
}

void cl_shard_kv_segs(const cl_config *cfg, cl_shard_segs *s)
{
    *s = (cl_shard_segs){1, {cfg->num_kv_heads}, {cfg->head_dim}};
}

void cl_shard_head_segs(const cl_config *cfg, int64_t unit, cl_shard_segs *s)
{
    *s = (cl_shard_segs){1, {cfg->num_heads}, {unit}};
}
