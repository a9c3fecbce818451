/* server.h - `collage serve`: an OpenAI-compatible HTTP server over one loaded model
 * (docs/SERVER.md describes the API). HTTP threads (libmicrohttpd, epoll thread pool)
 * parse and check requests and hand them to one engine thread that owns the model,
 * cache, scheduler, prefix cache and documents and runs continuous batching; streamed
 * answers travel back through suspended connections, so a stream holds no thread.
 *
 *   srv_opts o;  srv_opts_default(&o);  o.model_dir = dir; ...
 *   cl_cache_opts co;  srv_cache_opts(m, &o, &co);  cl_cache_create(m, &co, &c);
 *   srv_run(&o, m, c, store, prefix);       serves until SIGTERM / SIGINT, then drains
 */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "collage.h"

typedef struct {
    const char *model_dir;         /* tokenizer, chat template, generation_config.json */
    const char *host;              /* address to bind (default 127.0.0.1) */
    int port;                      /* 0: any free port (reported through on_listen) */
    const char *api_key;           /* NULL: no key needed */
    const char *served_model_name; /* NULL: the model directory's name */
    int max_seqs;                  /* sequences decoded together (default 64) */
    int tier_slots;                /* state slots kept for the GPU tier's entries (0: none) */
    int max_queue;                 /* requests waiting beyond max_seqs before 429 (256) */
    int max_n;                     /* choices per request (default 16) */
    int64_t max_context;           /* RoPE positions allowed (0: the config's) */
    int64_t max_batch_tokens;      /* rows per forward call (0: the scheduler's default) */
    int64_t default_max_tokens;    /* budget of a request without max_tokens (0: what the
                                      context leaves, as vLLM; the scheduler reserves KV for
                                      the whole budget at admission) */
    int http_threads;              /* libmicrohttpd thread pool (default 4) */
    int threads;                   /* CPU threads of the engine thread's parallel work (0:
                                      OpenMP's default; the model's --threads applies only to
                                      the thread that loaded it) */
    size_t max_body_bytes;         /* request body limit (default 32 MiB) */
    size_t max_header_bytes;       /* per-connection header memory (default 64 KiB) */
    int reasoning;                 /* qwen3 reasoning parser (default 1) */
    int tools;                     /* hermes tool-call parser (default 1) */
    int test_hooks;                /* accept "collage_force_text" (tests only) */
    double drain_timeout_s;        /* SIGTERM: wait this long for requests (default 30) */
    void (*on_listen)(void *user, const char *host, int port);
    void *user;
} srv_opts;

void srv_opts_default(srv_opts *o);
/* The cache the server needs for model m: fixed-size on CUDA (every page that fits in
 * memory, slots for max_seqs + a few), growable on the CPU; GDN transition products
 * kept when the model has GDN layers (documents composed with fuse / caso). */
void srv_cache_opts(const cl_model *m, const srv_opts *o, cl_cache_opts *co);
/* Serves until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish
 * (up to drain_timeout_s, then cancels them) and returns CL_OK. c: a cache of m made
 * with srv_cache_opts; st and p may be NULL (no store: no reuse, no documents). Fails
 * (before serving) when the address cannot be bound or the model's tokenizer or chat
 * template cannot be loaded. */
int srv_run(const srv_opts *o, cl_model *m, cl_cache *c, cl_store *st, cl_prefix *p);

#endif
