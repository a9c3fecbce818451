#include "model_flags.h"

#include <stdio.h>

#include "common/status.h"

void cli_model_flags_init(cli_model_flags *f)
{
    f->model = NULL;
    f->backend = NULL;
    f->threads = 0;
    f->gka_num_iter = -1;
    f->max_context = 0;
}

void cli_sampling_flags_init(cli_sampling_flags *s)
{
    s->greedy = 0;
    s->temperature = 1.0;
    s->top_p = 1.0;
    s->min_p = 0.0;
    s->repetition_penalty = 1.0;
    s->top_k = 0;
    s->seed = 0;
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
    int rc = cl_model_load(f->model, &o, out);
    if (rc != CL_OK)
        return cli_fail(rc);
    return 0;
}
