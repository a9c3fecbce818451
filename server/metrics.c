#include "metrics.h"

#include <string.h>
#include <sys/resource.h>

static const char *const endpoint_names[EP_COUNT] = {
    "chat_completions", "completions", "models", "health", "metrics",
    "tokenize", "detokenize", "documents", "other"};

const char *srv_endpoint_name(int ep)
{
    return ep >= 0 && ep < EP_COUNT ? endpoint_names[ep] : "other";
}

static void hist_init(srv_hist *h, const double *le, int n)
{
    memset(h, 0, sizeof *h);
    h->n = n;
    memcpy(h->le, le, (size_t)n * sizeof *le);
}

void srv_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    static const double ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                  0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160};
    static const double itl[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015,
                                 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                                 0.4, 0.5, 0.75, 1, 2.5, 5};
    static const double e2e[] = {0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15,
                                 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680};
    hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof *ttft));
    hist_init(&m->itl, itl, (int)(sizeof itl / sizeof *itl));
    hist_init(&m->e2e, e2e, (int)(sizeof e2e / sizeof *e2e));
    hist_init(&m->queue, e2e, (int)(sizeof e2e / sizeof *e2e));
}

void srv_metrics_free(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void srv_metrics_lock(srv_metrics *m) { pthread_mutex_lock(&m->mu); }
void srv_metrics_unlock(srv_metrics *m) { pthread_mutex_unlock(&m->mu); }

void srv_metrics_request(srv_metrics *m, int endpoint, int http_code)
{
    if (endpoint < 0 || endpoint >= EP_COUNT)
        endpoint = EP_OTHER;
    if (http_code < 100 || http_code >= 600)
        http_code = 500;
    pthread_mutex_lock(&m->mu);
    m->requests[endpoint][http_code]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_hist_observe(srv_hist *h, double v)
{
    int i = 0;
    while (i < h->n && v > h->le[i])
        i++;
    h->count[i]++;
    h->sum += v;
    h->total++;
}

void srv_metrics_publish(srv_metrics *m, const srv_engine_snap *s)
{
    pthread_mutex_lock(&m->mu);
    m->snap = *s;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_snap(srv_metrics *m, srv_engine_snap *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->snap;
    pthread_mutex_unlock(&m->mu);
}

static void head(sbuf *o, const char *name, const char *type, const char *help)
{
    sb_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(sbuf *o, const char *name, const char *type, const char *help, double v)
{
    head(o, name, type, help);
    sb_printf(o, "%s %.17g\n", name, v);
}

static void hist(sbuf *o, const char *name, const char *help, const srv_hist *h)
{
    head(o, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        sb_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
    }
    cum += h->count[h->n];
    sb_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", name,
              (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->total);
}

void srv_metrics_render(srv_metrics *m, cl_store *store, sbuf *o)
{
    cl_store_stats ss;
    int have_store = store && cl_store_stat(store, &ss) == CL_OK;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    pthread_mutex_lock(&m->mu);
    const srv_engine_snap *s = &m->snap;
    head(o, "collage_requests_total", "counter", "HTTP requests answered, by endpoint and status");
    for (int e = 0; e < EP_COUNT; e++)
        for (int c = 100; c < 600; c++)
            if (m->requests[e][c])
                sb_printf(o, "collage_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
                          endpoint_names[e], c, (unsigned long long)m->requests[e][c]);
    scalar(o, "collage_requests_running", "gauge", "requests decoding or prefilling", s->running);
    scalar(o, "collage_requests_waiting", "gauge", "requests queued for admission", s->waiting);
    scalar(o, "collage_engine_requests", "gauge", "requests the engine holds", s->jobs);
    scalar(o, "collage_requests_cancelled_total", "counter",
           "requests stopped before their end (client gone, shutdown)", (double)m->cancelled);
    scalar(o, "collage_client_disconnects_total", "counter",
           "clients that went away before their answer was complete", (double)m->disconnects);
    scalar(o, "collage_requests_rejected_total", "counter",
           "requests refused because the queue was full", (double)m->rejected_full);
    scalar(o, "collage_prompt_tokens_total", "counter", "prompt tokens of finished requests",
           (double)m->prompt_tokens);
    scalar(o, "collage_generation_tokens_total", "counter", "tokens generated",
           (double)m->generation_tokens);
    scalar(o, "collage_prefix_cache_queries_total", "counter",
           "requests whose prompt was looked up in the store and the hot tiers",
           (double)m->prefix_queries);
    scalar(o, "collage_prefix_cache_hits_total", "counter",
           "requests that resumed from a stored prefix", (double)m->prefix_hits);
    scalar(o, "collage_prefix_cached_tokens_total", "counter",
           "prompt tokens restored instead of computed", (double)m->cached_tokens);
    scalar(o, "collage_documents_ingested_total", "counter", "documents stored over HTTP",
           (double)m->documents_ingested);
    hist(o, "collage_time_to_first_token_seconds", "time from arrival to the first token",
         &m->ttft);
    hist(o, "collage_inter_token_latency_seconds", "time between consecutive tokens of a request",
         &m->itl);
    hist(o, "collage_request_queue_seconds", "time from arrival to admission", &m->queue);
    hist(o, "collage_e2e_request_latency_seconds", "time from arrival to the last token",
         &m->e2e);
    scalar(o, "collage_kv_pages_total", "gauge", "KV cache pages", (double)s->cache.total_pages);
    scalar(o, "collage_kv_pages_free", "gauge", "KV cache pages free", (double)s->cache.free_pages);
    scalar(o, "collage_state_slots_total", "gauge", "SSM state slots",
           (double)s->cache.total_slots);
    scalar(o, "collage_state_slots_free", "gauge", "SSM state slots free",
           (double)s->cache.free_slots);
    scalar(o, "collage_cache_kv_bytes", "gauge", "memory of the KV page pool",
           (double)s->cache.kv_bytes);
    scalar(o, "collage_cache_ssm_bytes", "gauge", "memory of the state slots",
           (double)s->cache.ssm_bytes);
    scalar(o, "collage_engine_steps_total", "counter", "forward calls of the scheduler",
           (double)s->steps);
    scalar(o, "collage_engine_rows_total", "counter", "token rows computed", (double)s->rows);
    scalar(o, "collage_engine_busy_seconds_total", "counter",
           "wall time in scheduler steps (forward calls and per-token work)", s->busy_s);
    head(o, "collage_engine_cpu_seconds_total", "counter",
         "CPU time of the engine thread: busy (loop), within steps (step), and of that in the "
         "per-token server work (token_callbacks)");
    sb_printf(o, "collage_engine_cpu_seconds_total{part=\"loop\"} %.9f\n", s->loop_cpu_s);
    sb_printf(o, "collage_engine_cpu_seconds_total{part=\"step\"} %.9f\n", s->step_cpu_s);
    sb_printf(o, "collage_engine_cpu_seconds_total{part=\"token_callbacks\"} %.9f\n",
              s->callback_s);
    if (s->has_prefix) {
        const cl_prefix_stats *p = &s->prefix;
        head(o, "collage_tier_hits_total", "counter", "stored states found, by tier");
        sb_printf(o, "collage_tier_hits_total{tier=\"gpu\"} %llu\n",
                  (unsigned long long)p->hits_gpu);
        sb_printf(o, "collage_tier_hits_total{tier=\"host\"} %llu\n",
                  (unsigned long long)p->hits_host);
        sb_printf(o, "collage_tier_hits_total{tier=\"store\"} %llu\n",
                  (unsigned long long)p->hits_store);
        head(o, "collage_tier_bytes", "gauge", "bytes held by the hot tiers");
        sb_printf(o, "collage_tier_bytes{tier=\"gpu\"} %llu\n", (unsigned long long)p->gpu_bytes);
        sb_printf(o, "collage_tier_bytes{tier=\"host\"} %llu\n",
                  (unsigned long long)p->host_bytes);
        scalar(o, "collage_prefix_restores_total", "counter", "states restored",
               (double)p->restores);
        scalar(o, "collage_store_written_bytes_total", "counter",
               "bytes written to the store by this process", (double)p->stored_bytes);
        scalar(o, "collage_store_errors_total", "counter", "failed store writes (warnings)",
               (double)p->store_errors);
        scalar(o, "collage_store_skipped_total", "counter",
               "states not stored because the write-behind queue was full",
               (double)p->skipped_saves);
    }
    pthread_mutex_unlock(&m->mu);
    if (have_store) {
        scalar(o, "collage_store_bytes", "gauge", "bytes of values in the store",
               (double)ss.total_bytes);
        scalar(o, "collage_store_entries", "gauge", "values in the store", (double)ss.total_count);
        scalar(o, "collage_store_pinned_bytes", "gauge", "bytes of pinned values",
               (double)ss.pinned_bytes);
    }
    scalar(o, "process_cpu_seconds_total", "counter", "user + system CPU time of the process",
           (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6);
}
