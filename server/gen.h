/* gen.h - starts a generation request (engine thread): composes the request's
 * documents when it names some (cl_doc_query: one composition per prompt, copied for
 * the other choices), then submits every choice to the scheduler (reuse through the
 * prefix cache, seeds seed + index, stop ids, budget within the context and, for a
 * fixed cache, within the whole cache), and opens the stream. On failure some choices
 * may be submitted: the caller stops them. CL status. */
#ifndef SRV_GEN_H
#define SRV_GEN_H

#include "job.h"
#include "srv.h"

int gen_start(srv *s, cl_sched *sched, srv_job *j);

#endif
