/* docs.h - document states in the store: a document is prefilled once, together
 * with a shared prefix (e.g. a task prompt), and its whole state (KV of prefix +
 * document, SSM states, log decays, and for GDN models the transition product
 * needed by fuse/CASO composition) is stored under its document key
 * H(model id, prefix ids, document ids, settings). A descriptor beside the state
 * records the model, the prefix (ids hash and length) and the document length, so
 * query-time composition can refuse documents that do not fit together. */
#ifndef CL_DOCS_H
#define CL_DOCS_H

#include <stdint.h>

#include "collage.h"
#include "engine/prefix.h"
#include "engine/seq.h"
#include "store/store.h"

/* Public (collage.h): cl_doc_meta, cl_doc_ingest (docs_ingest.c), cl_doc_compose and
 * cl_doc_query (docs_query.c), cl_doc_meta_get / list / delete / pin (here). */

/* Key of a document (settings as in the prefix cache: KV dtype, num_iter). */
void cl_doc_key(const cl_prefix *p, const int32_t *prefix, int64_t n_prefix, const int32_t *doc,
                int64_t n_doc, cl_key *out);
void cl_doc_prefix_hash(const int32_t *prefix, int64_t n_prefix, cl_key *out);
/* Stores s (holding prefix + doc) with its descriptor (model_id, prefix_hash,
 * prefix_tokens, doc_tokens, has_transition, name). pin: never evicted. With a ticket
 * and write-behind, the put is queued (*ticket: wait for it with cl_doc_wait); else it
 * is committed before the call returns (*ticket 0). */
int cl_doc_put(cl_prefix *p, const cl_key *key, const cl_seq *s, const cl_doc_meta *meta,
               int pin, uint64_t *ticket);
/* Waits until a queued put is committed; its status (0 ticket: CL_OK). */
int cl_doc_wait(cl_prefix *p, uint64_t ticket);
/* 1 if stored (header check only). */
int cl_doc_exists(cl_prefix *p, const cl_key *key);
/* Restores a document's state into s (empty) and its descriptor. The model must be
 * the one that wrote it (CL_ERR_FORMAT naming the document otherwise). */
int cl_doc_get(cl_prefix *p, const cl_key *key, cl_seq *s, cl_doc_meta *meta);
/* The descriptor of a document about to be used from a hot tier's copy (header and meta
 * only; counts as a use for the store's LRU eviction; the pin is not filled). */
int cl_doc_meta_use(cl_prefix *p, const cl_key *id, cl_doc_meta *out);

#endif
