/* engine.h - the engine thread: the only thread that touches the model, the cache, the
 * scheduler, the prefix cache and the documents. HTTP threads hand it jobs through an
 * inbox; it submits generation requests to the continuous-batching scheduler (every
 * request shares the forward calls: prefill chunks mixed with decode), steps it,
 * collects finished requests, runs document operations, notices clients that went
 * away while their connection waits (their requests are cancelled at once, giving
 * back KV pages and the state slot) and publishes its counters for /metrics. */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include "job.h"
#include "srv.h"

/* Creates the scheduler and starts the thread (s->eng). CL status. */
int eng_start(srv *s);
/* Cancels what is left, stops and joins the thread, frees the scheduler. */
void eng_stop(srv *s);
/* Hands a job to the engine (it takes its own reference). */
void eng_submit(srv *s, srv_job *j);
/* The client of j is gone: stop its work. */
void eng_cancel(srv *s, srv_job *j);
/* Cancels every job (shutdown after the drain timeout). */
void eng_cancel_all(srv *s);

#endif
