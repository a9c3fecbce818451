/* metrics.h - the server's counters and histograms and their Prometheus text
 * exposition (GET /metrics). Request counters are updated by HTTP threads, token
 * counters and latency histograms by the engine thread; one mutex guards them all
 * (updates are a few adds). The engine publishes a snapshot of what only it may read
 * (cache pages and slots, scheduler queue, prefix-cache tiers) after every step. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "collage.h"
#include "sbuf.h"

enum {
    EP_CHAT = 0, EP_COMPLETIONS, EP_MODELS, EP_HEALTH, EP_METRICS, EP_TOKENIZE, EP_DETOKENIZE,
    EP_DOCUMENTS, EP_OTHER, EP_COUNT
};
const char *srv_endpoint_name(int ep);

#define SRV_HIST_MAX 24
typedef struct {
    int n;                          /* bucket bounds */
    double le[SRV_HIST_MAX];
    uint64_t count[SRV_HIST_MAX + 1]; /* last: +Inf */
    double sum;
    uint64_t total;
} srv_hist;

/* What the engine thread publishes. */
typedef struct {
    int running, waiting;           /* scheduler: in flight, queued */
    int jobs;                       /* requests the engine holds (incl. not yet submitted) */
    cl_cache_stats cache;
    cl_prefix_stats prefix;
    int has_prefix;
    int64_t steps, rows;
    double busy_s;                  /* wall time in cl_sched_step */
    /* the engine thread's CPU time: when not waiting, within steps (model, scheduler and
     * per-token callbacks), and in the per-token callbacks (the server's work) */
    double loop_cpu_s, step_cpu_s, callback_s;
} srv_engine_snap;

typedef struct {
    pthread_mutex_t mu;
    uint64_t requests[EP_COUNT][600];
    uint64_t prompt_tokens, generation_tokens, cached_tokens;
    uint64_t prefix_queries, prefix_hits;
    uint64_t cancelled, disconnects, rejected_full;
    uint64_t documents_ingested;
    srv_hist ttft, itl, e2e, queue;
    srv_engine_snap snap;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int endpoint, int http_code);
/* Histogram observation; call with m->mu held (srv_metrics_lock). */
void srv_hist_observe(srv_hist *h, double v);
void srv_metrics_lock(srv_metrics *m);
void srv_metrics_unlock(srv_metrics *m);
void srv_metrics_publish(srv_metrics *m, const srv_engine_snap *s);
void srv_metrics_snap(srv_metrics *m, srv_engine_snap *out);
/* Prometheus text format 0.0.4 of everything; store may be NULL. */
void srv_metrics_render(srv_metrics *m, cl_store *store, sbuf *out);

#endif
