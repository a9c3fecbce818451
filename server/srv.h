/* srv.h - the server's shared state (internal to server/): the options, the model's
 * read-only facts for request checks, the metrics, the engine and the HTTP daemon.
 * What HTTP threads read here is set before the daemon starts and never changes,
 * except the counters (atomics) and the metrics (their own mutex). */
#ifndef SRV_SRV_H
#define SRV_SRV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "collage.h"
#include "metrics.h"
#include "request.h"
#include "server.h"

struct MHD_Daemon;
typedef struct srv_engine srv_engine;

typedef struct srv {
    srv_opts o;
    cl_model *m;
    cl_cache *c;
    cl_store *st;
    cl_prefix *p;
    cl_tokenizer *tok;
    cl_chat_template *tpl;
    srv_model_view view;         /* what request checks need */
    char model_name[256];
    int64_t created;             /* unix seconds at start (the models list) */
    int64_t stop_ids[CL_MAX_STOP_IDS];
    int n_stop_ids;
    int64_t page_tokens, total_pages; /* fixed caches: a request must fit in the whole pool */
    int fixed_cache;
    srv_metrics metrics;
    srv_engine *eng;
    struct MHD_Daemon *d;
    atomic_int draining;         /* SIGTERM seen: new requests get 503 */
    atomic_int pending;          /* generation jobs accepted and not finished */
    pthread_mutex_t alive_mu;    /* jobs alive (drain waits for 0) */
    pthread_cond_t alive_cv;
    int alive;
} srv;

/* Random hex id (n hex digits) into buf (n + 1 bytes). */
void srv_random_hex(char *buf, int n);

#endif
