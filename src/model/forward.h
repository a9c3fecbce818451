/* forward.h - the hybrid decoder, layer by layer (spec MODEL.md §4), written once
 * against the backend op table. */
#ifndef CL_FORWARD_H
#define CL_FORWARD_H

#include "backend/backend.h"
#include "model/cache.h"
#include "model/model.h"

typedef struct {
    const int64_t *logit_rows; /* batch rows whose logits are wanted (host) */
    int64_t n_logit_rows;
    float *logits;             /* host [n_logit_rows, V] (NULL: not copied out) */
    int32_t *argmax_ids;       /* optional host [n_logit_rows]: argmax computed on the backend */
    float *hidden;             /* optional host [(L+2), n_tok, Dm]: embeddings, after each
                                  layer, after the final norm (all rows; debugging/tests) */
} cl_forward_out;

/* Runs the batch through the model: appends every sequence's tokens to its state
 * (KV at kv_start.., SSM slot updated) and writes the requested logits. The
 * caller has reserved enough KV pages for kv_start + n_tok slots.
 * Logits copied to the host that hold NaN/Inf are CL_ERR_RANGE naming where they
 * start, e.g. "non-finite values after layer 3 (GDN mixer) at token 17" (layers
 * and tokens count from 0, tokens within their sequence): the failing sequence's
 * tokens of this call are run again from an empty state in a scratch slot of the
 * cache, checking the hidden state after every stage (slow, but only on failure).
 * The sequences' states have then taken the tokens (non-finite values included). */
int cl_forward(cl_model *m, cl_cache *c, cl_batch *batch, const cl_forward_out *out);

#endif
