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

#include "collage.h"
#include "engine/generate.h"
#include "engine/seq.h"
#include "model/cache.h"
#include "model/model.h"

/* Public (collage.h): cl_compose_kv / ssm / opts / info, type parse / name / names,
 * needs_transition, cache_opts, cl_compose_states, cl_compose_run. Below: the engine's
 * own entry points. */

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


#endif
