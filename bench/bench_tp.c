/* bench_tp.c - sharded random-weight models through a host-memory checkpoint (see
 * bench_tp.h). */
#include "bench_tp.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "mkmodel/mkmodel.h"
#include "model/checkpoint.h"
#include "model/weights.h"

#define IMAGE_ALIGN 64

struct bench_image {
    char what[160];   /* stands for the file in messages */
    char *json;       /* config.json text */
    unsigned char *data;
    size_t size;
    double seconds;
};

typedef struct {
    char name[256];
    int role; /* cl_wrole; -1 embed, -2 lm_head, -3 final norm (as mkmodel) */
    int ndim;
    int64_t shape[4];
    size_t begin, bytes;
} plan_entry;

/* Every tensor mkmodel writes for cfg, in its order (lm_head, embed, layers, norm). */
static int make_plan(const cl_config *cfg, plan_entry **out, size_t *n_out)
{
    size_t cap = (size_t)cfg->num_layers * CL_W_ROLE_COUNT + 3, n = 0;
    plan_entry *p = calloc(cap, sizeof *p);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    p[n++] = (plan_entry){"lm_head.weight", -2, 2, {cfg->vocab_size, cfg->hidden_size}, 0, 0};
    p[n++] = (plan_entry){"model.embed_tokens.weight", -1, 2,
                          {cfg->vocab_size, cfg->hidden_size}, 0, 0};
    for (int64_t l = 0; l < cfg->num_layers; l++)
        for (int r = 0; r < CL_W_ROLE_COUNT; r++) {
            plan_entry *e = &p[n];
            e->ndim = cl_weights_expected_shape(cfg, cfg->layer_types[l], (cl_wrole)r, e->shape);
            if (!e->ndim)
                continue;
            cl_weights_tensor_name(cfg, l, (cl_wrole)r, e->name, sizeof e->name);
            e->role = r;
            n++;
        }
    p[n++] = (plan_entry){"model.norm.weight", -3, 1, {cfg->hidden_size}, 0, 0};
    size_t es = cl_dtype_size(cfg->dtype), off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < p[i].ndim; d++)
            numel *= (size_t)p[i].shape[d];
        p[i].begin = off;
        p[i].bytes = numel * es;
        off = (off + p[i].bytes + IMAGE_ALIGN - 1) / IMAGE_ALIGN * IMAGE_ALIGN;
    }
    *out = p;
    *n_out = n;
    return CL_OK;
}

/* The safetensors header (JSON) of the plan. */
static char *make_header(const plan_entry *p, size_t n, cl_dtype dt)
{
    cJSON *h = cJSON_CreateObject();
    for (size_t i = 0; h && i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, p[i].name);
        cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *offs = e ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        if (!e || !shape || !offs || !cJSON_AddStringToObject(e, "dtype", cl_dtype_name(dt))) {
            cJSON_Delete(h);
            return NULL;
        }
        for (int d = 0; d < p[i].ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)p[i].shape[d]));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)p[i].begin));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(p[i].begin + p[i].bytes)));
    }
    char *txt = h ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    return txt;
}

/* Values of a tensor as mkmodel writes them (cl_mkmodel_init_value in the file dtype). */
static void fill_values(void *dst, cl_dtype dt, size_t n, int role, uint64_t key)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = cl_mkmodel_init_value(role, key, i);
        if (dt == CL_BF16)
            ((uint16_t *)dst)[i] = cl_f32_to_bf16(v);
        else if (dt == CL_F16)
            ((uint16_t *)dst)[i] = cl_f32_to_f16(v);
        else
            ((float *)dst)[i] = v;
    }
}

int bench_image_create(const cl_random_model_opts *o, bench_image **out)
{
    if (!o || !o->preset)
        return cl_err(CL_ERR_ARG, "random model: no preset given");
    double t0 = cl_now();
    cl_mkmodel_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.preset = o->preset;
    mo.seed = o->seed;
    mo.pattern = o->pattern;
    mo.dtype = o->dtype;
    mo.layers = o->layers;
    mo.no_tokenizer = 1;
    bench_image *im = calloc(1, sizeof *im);
    if (!im)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    snprintf(im->what, sizeof im->what, "random checkpoint (preset %s, in memory)", o->preset);
    int rc = cl_mkmodel_config_json(&mo, -1, -1, &im->json);
    cl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int have_cfg = 0;
    if (rc == CL_OK && (rc = cl_config_parse(im->what, im->json, &cfg)) == CL_OK)
        have_cfg = 1;
    plan_entry *p = NULL;
    size_t n = 0;
    char *hdr = NULL;
    if (rc == CL_OK)
        rc = make_plan(&cfg, &p, &n);
    if (rc == CL_OK && !(hdr = make_header(p, n, cfg.dtype)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK) {
        /* 8-byte length, the header padded with spaces so that data starts aligned */
        size_t hlen = strlen(hdr), data_off = 8 + hlen;
        data_off = (data_off + IMAGE_ALIGN - 1) / IMAGE_ALIGN * IMAGE_ALIGN;
        hlen = data_off - 8;
        size_t data_bytes = p[n - 1].begin + p[n - 1].bytes;
        im->size = data_off + data_bytes;
        im->data = malloc(im->size);
        if (!im->data) {
            rc = cl_err(CL_ERR_NOMEM, "out of host memory for a %.1f GB random checkpoint "
                                      "(preset %s)",
                        (double)im->size / 1e9, o->preset);
        } else {
            for (int i = 0; i < 8; i++)
                im->data[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
            memset(im->data + 8, ' ', hlen);
            memcpy(im->data + 8, hdr, strlen(hdr));
            for (size_t i = 0; i < n; i++) {
                size_t numel = p[i].bytes / cl_dtype_size(cfg.dtype);
                unsigned char *t = im->data + data_off + p[i].begin;
                fill_values(t, cfg.dtype, numel, p[i].role, cl_rng_key(o->seed, p[i].name));
                size_t end = i + 1 < n ? p[i + 1].begin : data_bytes; /* the alignment gap */
                memset(t + p[i].bytes, 0, end - p[i].begin - p[i].bytes);
                cl_progress("random checkpoint (host)", (uint64_t)(i + 1), (uint64_t)n);
            }
            cl_progress_end("random checkpoint (host)");
        }
    }
    free(hdr);
    free(p);
    if (have_cfg)
        cl_config_free(&cfg);
    if (rc != CL_OK) {
        bench_image_free(im);
        return rc;
    }
    im->seconds = cl_now() - t0;
    cl_log_info("%s: %.2f GB in %.1f s", im->what, (double)im->size / 1e9, im->seconds);
    *out = im;
    return CL_OK;
}

void bench_image_free(bench_image *im)
{
    if (!im)
        return;
    free(im->json);
    free(im->data);
    free(im);
}

size_t bench_image_bytes(const bench_image *im) { return im->size; }
double bench_image_seconds(const bench_image *im) { return im->seconds; }

int bench_image_model(const bench_image *im, const char *backend, int threads, int tp,
                      int64_t gka_num_iter, cl_model **out)
{
    if (tp < 1)
        return cl_err(CL_ERR_ARG, "--tp must be at least 1 (got %d)", tp);
    cl_model *m = calloc(1, sizeof *m);
    if (!m)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = cl_config_parse(im->what, im->json, &m->ck.cfg);
    if (rc != CL_OK) {
        free(m);
        return rc;
    }
    m->cfg = &m->ck.cfg;
    if (!(m->ck.dir = strdup(im->what)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK)
        rc = cl_st_open_memory(im->what, im->data, im->size, &m->ck.st);
    if (rc == CL_OK)
        rc = cl_weights_bind(m->cfg, m->ck.st, &m->ck.w);
    m->gka_num_iter = gka_num_iter >= 0 ? gka_num_iter : m->cfg->gka.num_iter;
    m->tp = tp;
    m->loaded = 1;
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = backend;
    mo.threads = threads;
    mo.tp = tp;
    mo.gka_num_iter = gka_num_iter;
    if (rc == CL_OK)
        rc = cl_model_load_shards(m, &mo, tp);
    if (rc != CL_OK) {
        cl_model_free(m);
        return rc;
    }
    *out = m;
    return CL_OK;
}

int bench_tp_ranks(const cl_model *m) { return m->shard ? m->tp : 1; }

cl_model *bench_tp_rank_model(cl_model *m, int r) { return m->shard ? m->shard[r] : m; }

cl_cache *bench_tp_rank_cache(cl_cache *c, int r) { return c->shard ? c->shard[r] : c; }

typedef struct {
    cl_model *m;
    int (*fn)(void *user, int r);
    void *user;
} on_ranks_job;

static int on_ranks_fn(void *user, int r)
{
    on_ranks_job *j = user;
    return j->fn(j->user, r);
}

/* A failing rank ends the collectives the others may wait in (cl_comm_abort). */
static void on_ranks_failed(void *user, int r)
{
    on_ranks_job *j = user;
    cl_comm_abort(j->m->comms[r]);
}

int bench_tp_on_ranks(cl_model *m, int (*fn)(void *user, int r), void *user)
{
    if (!m->shard)
        return fn(user, 0);
    on_ranks_job j = {m, fn, user};
    int rc = cl_ranks_run(m->ranks, on_ranks_fn, &j, on_ranks_failed);
    for (int r = 0; rc != CL_OK && r < m->tp; r++)
        cl_comm_recover(m->comms[r]);
    return rc;
}

static int rank_sync(void *user, int r)
{
    cl_model *sh = bench_tp_rank_model(user, r);
    return sh->b->ops->sync(sh->b);
}

int bench_tp_sync(cl_model *m) { return bench_tp_on_ranks(m, rank_sync, m); }

void bench_tp_set_num_iter(cl_model *m, int64_t num_iter)
{
    m->gka_num_iter = num_iter;
    for (int r = 0; m->shard && r < m->tp; r++)
        m->shard[r]->gka_num_iter = num_iter;
}
