/* session.h - generation with prefix reuse: restore the longest stored prefix of
 * the prompt, prefill the rest (capturing snapshots where later requests can
 * resume: every N blocks if asked, and one token before the end of the prompt,
 * so the same prompt resumes there), generate, and store the new KV blocks plus
 * the snapshots, including one at the end of prompt + answer so that the next
 * turn of a conversation resumes after the whole answer. */
#ifndef CL_SESSION_H
#define CL_SESSION_H

#include "engine/generate.h"
#include "engine/prefix.h"

typedef struct {
    int64_t cached_tokens;   /* prompt tokens restored from the store */
    int64_t prefill_tokens;  /* prompt tokens computed */
    cl_gen_stats gen;        /* of the generation (its prefill part: the last prompt token) */
    double prefill_s;        /* restore + prefill, to the first token's logits */
} cl_session_stats;

typedef struct {
    int64_t snapshot_every; /* blocks between extra snapshots in long prefills (0: none) */
    int store_answer;       /* also store the state after prompt + answer */
    int restore;            /* look up stored prefixes (0: only store) */
} cl_session_opts;

void cl_session_opts_default(cl_session_opts *o);

/* s: an empty sequence. pc may be NULL (no store): then this is cl_generate. */
int cl_session_generate(cl_model *m, cl_seq *s, cl_prefix *pc, const cl_session_opts *so,
                        const int32_t *prompt, int64_t n, const cl_gen_opts *go, cl_ids *out,
                        cl_session_stats *st);

#endif
