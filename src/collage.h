/* collage.h - the public C API of collage, in one include.
 *
 * Lifecycle (every call returns an int status, CL_OK = 0; cl_errmsg() explains a
 * failure in one line naming the file or key at fault):
 *
 *   cl_model *m;   cl_model_load(dir, &opts, &m);         weights on a backend
 *   cl_cache *c;   cl_cache_create(m, NULL, &c);          KV pages + SSM slots
 *   cl_seq s;      cl_seq_init(&s, c);                    one sequence's state
 *   cl_generate(m, &s, prompt, n, &gen_opts, &out, &stats);
 *   ... cl_seq_release(&s); cl_cache_free(c); cl_model_free(m);
 *
 * With a store (content-addressed, persistent, shared by processes):
 *   cl_store *st;  cl_store_open(dir, NULL, &st);
 *   cl_prefix pc;  cl_prefix_init(&pc, st, m, c, 0);
 *   cl_session_generate(m, &s, &pc, NULL, prompt, n, &gen_opts, &out, &stats);
 *
 * State: cl_state_snapshot / cl_state_restore (bytes), documents (engine/docs.h),
 * composition of several states (compose/compose.h), continuous batching of many
 * requests (engine/scheduler.h), text (tokenizer/bpe.h, tokenizer/chat.h).
 * Each header below is the contract of its module.
 */
#ifndef COLLAGE_H
#define COLLAGE_H

#include "common/status.h"
#include "compose/compose.h"
#include "engine/docs.h"
#include "engine/generate.h"
#include "engine/prefix.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/seq.h"
#include "engine/session.h"
#include "engine/state.h"
#include "model/cache.h"
#include "model/model.h"
#include "store/store.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat.h"

#endif
