/* scheduler.h - continuous batching (public API in collage.h: cl_sched_*): many
 * requests share every forward call. Each step decodes one token for every sequence in
 * its decode phase and fills the rest of the step's token budget with prefill chunks
 * of admitted requests (chunked prefill mixed with decode). A request is admitted when
 * the cache can hold its whole prompt + max_new_tokens (KV pages and an SSM slot are
 * reserved then), so a fixed-size GPU cache is filled to capacity and never
 * overcommitted; finished or cancelled sequences give their pages and slot back at
 * once. With a prefix cache, an admitted request first restores the longest stored
 * prefix of its prompt, and a finished one stores its blocks and a snapshot one token
 * before the end of its prompt and one after its answer (as cl_session_generate). */
#ifndef CL_SCHEDULER_H
#define CL_SCHEDULER_H

#include "collage.h"
#include "engine/generate.h"
#include "engine/prefix.h"
#include "engine/sampler.h"
#include "engine/seq.h"

#endif
