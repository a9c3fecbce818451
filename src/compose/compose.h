/* compose.h - state composition (spec COMPOSITION.md): turns N prefilled
 * sequence states into one state that a query continues from.
 *
 * A compose type is a KV strategy x an SSM strategy (§2):
 *   KV:  full   one ordinary prefill of the whole context (§4b)
 *        concat chunks prefilled independently, KV concatenated in order with the
 *               shared lead (pads + prefix) kept once (§4)
 *        sw     concat, and the KV of every chunk but the last hidden from new
 *               queries (the seq's hide range)
 *   SSM: kv_only zero conv + recurrent states (§5.1)
 *        soup    mean of every state (§5.2)
 *        fuse    PICASO: Mamba2 scalar log-space coefficients, GDN matrix version
 *                with the transition products, GKA sum; conv states averaged (§5.3)
 *        caso    the state the layer would hold after reading the documents in
 *                order (§5.4); not in the reference, for comparison
 *
 * Two entry points: cl_compose_context() composes the chunks of one long input
 * in memory as the reference does; cl_compose_states() combines states that
 * were prefilled elsewhere (documents restored from the store). The first uses
 * the second. Where the reference is wrong (COMPOSITION.md §11) this module does
 * the mathematically right thing; docs/COMPOSITION-NOTES.md lists the choices.
 */
#ifndef CL_COMPOSE_H
#define CL_COMPOSE_H

#include <stdint.h>

#include "common/ids.h"
#include "engine/generate.h"
#include "engine/seq.h"
#include "model/cache.h"
#include "model/model.h"

typedef enum { CL_COMPOSE_KV_FULL = 0, CL_COMPOSE_KV_CONCAT, CL_COMPOSE_KV_SW } cl_compose_kv;

typedef enum {
    CL_COMPOSE_SSM_KV_ONLY = 0,
    CL_COMPOSE_SSM_SOUP,
    CL_COMPOSE_SSM_FUSE,
    CL_COMPOSE_SSM_CASO,
} cl_compose_ssm;

/* The reference's default pad: Qwen's id of "\n". */
#define CL_COMPOSE_DEFAULT_PAD 198

typedef struct {
    cl_compose_kv kv;
    cl_compose_ssm ssm;
    int64_t num_chunks;        /* N >= 1 (in-memory composition) */
    const int32_t *prefix_ids; /* shared prefix prepended to every chunk (may be NULL) */
    int64_t n_prefix;
    int64_t min_prepend;       /* pads per chunk when there is no prefix (default 1) */
    int32_t pad_id;            /* left pad ("\n" id; default 198) */
    int sequential_positions;  /* RoPE positions continue across chunks */
    int sw_mask_query;         /* sw: hide the gap from the query body too */
    int64_t prefill_chunk;     /* tokens per forward call when prefilling rows (0: default) */
    int64_t max_context;       /* RoPE positions allowed (0: config max_position_embeddings) */
    /* cl_compose_states only: leading KV slots of each document (pads + shared
     * prefix) that only the first document keeps; NULL: n_prefix for every one. */
    const int64_t *doc_lead;
} cl_compose_opts;

/* What a composition produced. */
typedef struct {
    int n_docs;              /* documents / chunk rows combined */
    int64_t row_tokens;      /* in-memory: tokens per (padded) row, max_len */
    int64_t lead_tokens;     /* lead of the first document, kept once (n_pre_0) */
    int64_t kept_tokens;     /* KV slots of the composed state */
    int64_t pos;             /* RoPE position of the next token */
    int64_t hide_lo, hide_hi; /* sw gap (empty otherwise) */
    double prefill_s;        /* in-memory: prefilling the rows (and the full context) */
    double compose_s;        /* combining the states */
    double query_s;          /* cl_compose_run: feeding the query body */
} cl_compose_info;

void cl_compose_opts_default(cl_compose_opts *o);

/* "concat_kv_soup_ssm" etc. (the reference's nine, plus full_kv_caso_ssm,
 * concat_kv_caso_ssm, sw_caso_ssm). CL_ERR_ARG naming the valid types if unknown. */
int cl_compose_type_parse(const char *name, cl_compose_kv *kv, cl_compose_ssm *ssm);
/* The name of a type (static string). */
const char *cl_compose_type_name(cl_compose_kv kv, cl_compose_ssm ssm);

/* 1 if the strategy needs the GDN transition product (GDN fuse / caso on a model
 * with GDN layers): create the cache with track_transition then. */
int cl_compose_needs_transition(const cl_model *m, cl_compose_ssm ssm);
/* Cache options for composing on model m with o (track_transition as needed). */
void cl_compose_cache_opts(const cl_model *m, const cl_compose_opts *o, cl_cache_opts *co);

/* Combines n >= 1 prefilled documents into out (an initialised seq of the same
 * cache, none of the docs). Document i holds [lead_i tokens][content_i] prefilled
 * from the zero state (lead_i from o->doc_lead or o->n_prefix). KV (o->kv concat
 * or sw): document 0 entire, then the content of documents 1..n-1, in order; sw
 * hides the content of documents 0..n-2 from new queries. SSM: o->ssm. Positions:
 * out->pos = the largest document pos (non-sequential) or the kept length
 * (o->sequential_positions). The composed state's log decays start at 0 and its
 * GDN transitions at the identity (caso: the exact totals). o->kv full is
 * CL_ERR_ARG (it needs the whole context: cl_compose_context). */
int cl_compose_states(const cl_seq *const *docs, int n, const cl_compose_opts *o, cl_seq *out,
                      cl_compose_info *info);

/* Replaces only the SSM part (conv, states, log decay, transition) of out by the
 * combination `ssm` of the documents' SSM states; KV and counters untouched. */
int cl_compose_ssm_into(const cl_seq *const *docs, int n, cl_compose_ssm ssm, cl_seq *out);

/* In-memory composition of context[0..n_context) (COMPOSITION.md §3-§6): builds
 * the rows, prefills them as one batch from zero states at their positions, and
 * composes them into out (an initialised, empty seq of a cache made with
 * cl_compose_cache_opts). out is then ready for the query body. */
int cl_compose_context(cl_model *m, const int32_t *context, int64_t n_context,
                       const cl_compose_opts *o, cl_seq *out, cl_compose_info *info);

/* Feeds the query body (the suffix without its last token) into a composed
 * state. The sw gap stays visible to it unless o->sw_mask_query (the reference
 * passes no mask there, §11.4); the hide range is in force again afterwards. */
int cl_compose_feed_query(cl_model *m, cl_seq *s, const int32_t *body, int64_t n,
                          const cl_compose_opts *o);

/* The reference's whole flow on a fresh cache: input = context ‖ suffix
 * (n_suffix >= 1 tokens at its end); composes the context, feeds the query body,
 * then generates from the last suffix token with g (g->logits_out row 0 = the
 * first generated token's logits). Checks every id and the context length. */
int cl_compose_run(cl_model *m, const int32_t *input, int64_t n_input, int64_t n_suffix,
                   const cl_compose_opts *o, const cl_gen_opts *g, cl_ids *out,
                   cl_compose_info *info, cl_gen_stats *st);

#endif
