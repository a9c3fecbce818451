#include "model_flags.h"

#include <stdio.h>
#include <string.h>

void cli_model_flags_init(cli_model_flags *f)
{
    memset(f, 0, sizeof *f);
    f->gka_num_iter = -1;
}

void cli_sampling_flags_init(cli_sampling_flags *s)
{
    cl_sampler_opts d;
    cl_sampler_opts_default(&d);
    s->greedy = d.greedy;
    s->temperature = d.temperature;
    s->top_p = d.top_p;
    s->min_p = d.min_p;
    s->repetition_penalty = d.repetition_penalty;
    s->top_k = d.top_k;
    s->seed = (int64_t)d.seed;
}

void cli_sampling_to_opts(const cli_sampling_flags *s, cl_sampler_opts *o)
{
    cl_sampler_opts_default(o);
    o->greedy = s->greedy;
    o->temperature = (float)s->temperature;
    o->top_k = s->top_k;
    o->top_p = (float)s->top_p;
    o->min_p = (float)s->min_p;
    o->repetition_penalty = (float)s->repetition_penalty;
    o->seed = (uint64_t)s->seed;
}

int cli_load_model(const char *verb, const cli_model_flags *f, cl_model **out)
{
    if (!f->model)
        return cli_usage_error(verb, "--model is required");
    cl_model_opts o;
    cl_model_opts_default(&o);
    o.backend = f->backend;
    o.threads = (int)f->threads;
    o.gka_num_iter = f->gka_num_iter;
    o.prefill_chunk = f->prefill_chunk;
    o.tp = (int)f->tp;
    int rc = cl_model_load(f->model, &o, out);
    return rc == CL_OK ? 0 : cli_fail(rc);
}

void cli_store_flags_init(cli_store_flags *s)
{
    memset(s, 0, sizeof *s);
    s->block_tokens = 64;
}

int cli_open_store(const char *verb, const cli_store_flags *f, int default_on, cl_model *m,
                   cl_cache *c, cl_store **st, cl_prefix **pc)
{
    *st = NULL;
    *pc = NULL;
    if (f->no_store && f->store)
        return cli_usage_error(verb, "--store and --no-store exclude each other");
    if (f->no_store || (!default_on && !f->store))
        return 0;
    char dir[4096];
    int rc = cl_store_resolve_dir(f->store, dir, sizeof dir);
    cl_store_opts o;
    memset(&o, 0, sizeof o);
    o.max_bytes = (uint64_t)f->max_bytes;
    if (rc == CL_OK)
        rc = cl_store_open(dir, &o, st);
    cl_prefix_opts po;
    cl_prefix_opts_default(&po);
    po.block_tokens = f->block_tokens;
    po.snapshot_every = f->snapshot_every;
    po.gpu_tier_bytes = (uint64_t)f->gpu_tier;
    po.host_tier_bytes = (uint64_t)f->host_tier;
    po.gpu_tier_max_states = f->gpu_tier_states;
    po.never_wait = f->never_wait;
    if (rc == CL_OK)
        rc = cl_prefix_create(*st, m, c, &po, pc);
    if (rc != CL_OK) {
        if (*st)
            cl_store_close(*st);
        *st = NULL;
        return cli_fail(rc);
    }
    return 0;
}
