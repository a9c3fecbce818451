/* scheduler.h - continuous batching: many requests share every forward call.
 * Each step decodes one token for every sequence in its decode phase and fills the
 * rest of the step's token budget with prefill chunks of admitted requests (chunked
 * prefill mixed with decode). A request is admitted when the cache can hold its
 * whole prompt + max_new_tokens (KV pages and an SSM slot are reserved then), so a
 * fixed-size GPU cache is filled to capacity and never overcommitted; finished
 * sequences give their pages and slot back at once. */
#ifndef CL_SCHEDULER_H
#define CL_SCHEDULER_H

#include <stdint.h>

#include "engine/generate.h"
#include "engine/sampler.h"
#include "engine/seq.h"

typedef struct {
    int64_t max_batch_tokens; /* rows per forward call (default 512) */
    int max_seqs;             /* sequences in flight (default 64) */
} cl_sched_opts;

typedef struct {
    const int32_t *prompt; /* copied at submit */
    int64_t n_prompt;
    cl_gen_opts gen;       /* max_new_tokens, sampling, eos, ignore_eos, on_token (force_ids
                              and logits_out are not used here) */
} cl_sched_req;

typedef struct cl_sched cl_sched;

void cl_sched_opts_default(cl_sched_opts *o);
int cl_sched_create(cl_model *m, cl_cache *c, const cl_sched_opts *o, cl_sched **out);
void cl_sched_free(cl_sched *s);
/* Queues a request; *id identifies it in cl_sched_result. */
int cl_sched_submit(cl_sched *s, const cl_sched_req *r, int *id);
/* One forward call. *active = requests not finished (queued or running). */
int cl_sched_step(cl_sched *s, int *active);
/* Steps until every request has finished. */
int cl_sched_run(cl_sched *s);
/* The ids generated for a finished request (valid until cl_sched_free). */
int cl_sched_result(cl_sched *s, int id, const cl_ids **ids, cl_stop_reason *stop);
/* Statistics: forward calls and the rows they carried. */
void cl_sched_counts(const cl_sched *s, int64_t *steps, int64_t *rows, int *max_running);

#endif
