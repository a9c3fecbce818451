/* documents.h - the documents extension over HTTP (docs/SERVER.md): stored document
 * states that chat and completion requests compose ("documents": [ids]).
 *   POST   /v1/documents             ingest: {"documents": [text | {"text" | "token_ids",
 *                                    "name"}], "prefix" | "prefix_token_ids", "pin"}
 *   GET    /v1/documents             list
 *   GET    /v1/documents/{id}        describe
 *   DELETE /v1/documents/{id}        delete
 *   POST   /v1/documents/{id}/pin    pin (never evicted); .../unpin
 * Bodies are parsed on the HTTP thread; the work runs on the engine thread. */
#ifndef SRV_DOCUMENTS_H
#define SRV_DOCUMENTS_H

#include "job.h"

/* Parses an ingest body into op (freed with the job). 0 or -1 with *e. */
int docs_parse_ingest(srv *s, const char *body, size_t len, srv_doc_op *op, srv_error *e);
/* Runs the job's document operation (engine thread) and answers it. */
void docs_run(srv *s, srv_job *j);

#endif
