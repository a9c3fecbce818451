/* generate.h - prompt in, new token ids out: prefill (chunked), then one token at a
 * time through the recurrent (decode) path, choosing with a sampler or emitting forced
 * ids (teacher forcing), stopping on EOS, a callback or the token budget. The public
 * part (cl_gen_opts, cl_gen_stats, cl_generate, cl_model_stop_ids) is in collage.h. */
#ifndef CL_GENERATE_H
#define CL_GENERATE_H

#include <stdint.h>

#include "collage.h"
#include "engine/sampler.h"
#include "engine/seq.h"

/* 1 if id ends generation under o (its eos ids, else the config's; never with ignore_eos). */
int cl_gen_is_eos(const cl_gen_opts *o, const cl_config *cfg, int32_t id);
/* Checks that n more tokens fit in the context (clear error otherwise). */
int cl_check_context(const cl_model *m, const cl_seq *s, int64_t n, int64_t max_context);
/* Checks ids are in the vocabulary and fit in the context. */
int cl_check_prompt(const cl_model *m, const cl_seq *s, const int32_t *ids, int64_t n,
                    int64_t max_context);
/* The token budget that fits after a prompt of n tokens at position pos: o's
 * max_new_tokens, or with shorten_to_fit what is left of the context (logged);
 * CL_ERR_RANGE naming the limit when the prompt itself (or, without shorten_to_fit,
 * prompt + budget) does not fit. Checked before any work. */
int cl_gen_budget(const cl_model *m, int64_t pos, int64_t n, const cl_gen_opts *o,
                  int64_t *max_new);

#endif
