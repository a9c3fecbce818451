/* run.c - srv_run: the server's start (tokenizer, chat template, sampling defaults,
 * engine, daemon), its wait for SIGTERM / SIGINT, and the drain. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "http.h"
#include "server.h"
#include "srv.h"

void srv_opts_default(srv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8000;
    o->max_seqs = 64;
    o->max_queue = 256;
    o->max_n = 16;
    o->http_threads = 4;
    o->max_body_bytes = 32u << 20;
    o->max_header_bytes = 64u << 10;
    o->reasoning = 1;
    o->tools = 1;
    o->drain_timeout_s = 30;
}

void srv_cache_opts(const cl_model *m, const srv_opts *o, cl_cache_opts *co)
{
    cl_cache_opts_for_model(m, co);
    cl_model_info mi;
    cl_model_info_get(m, &mi);
    /* + document ingest and composition, + the GPU tier's entries (which never hand a
     * slot back under pressure: without their own, they could starve admission) */
    int slots = o->max_seqs + 4 + o->tier_slots;
    if (mi.backend && !strcmp(mi.backend, "cuda")) {
        co->growable = 0;
        co->init_pages = 0; /* every page that fits: admission control knows when it is full */
        co->init_slots = slots;
    } else {
        co->init_slots = slots < 8 ? slots : 8;
    }
    for (int64_t i = 0; i < mi.num_layers; i++)
        if (cl_model_layer(m, i) == CL_LAYER_GDN)
            co->track_transition = 1; /* documents composed with fuse / caso */
}

void srv_random_hex(char *buf, int n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    int bytes = (n + 1) / 2;
    if (bytes > (int)sizeof raw)
        bytes = (int)sizeof raw;
    if (getrandom(raw, (size_t)bytes, 0) != bytes) { /* no entropy source: time and address */
        uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)buf ^ (uint64_t)clock();
        for (int i = 0; i < bytes; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
    }
    for (int i = 0; i < n && i / 2 < bytes; i++)
        buf[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    buf[n] = 0;
}

/* Sampling defaults from DIR/generation_config.json (as vLLM's --generation-config auto):
 * temperature, top_p, top_k, min_p, repetition_penalty when present. */
static int gen_defaults(const char *dir, cl_sampler_opts *o)
{
    cl_sampler_opts_default(o);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return CL_OK; /* optional */
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap ? 2 * cap : 4096);
            if (!nb) {
                free(buf);
                fclose(f);
                return cl_err(CL_ERR_NOMEM, "out of memory");
            }
            buf = nb;
            cap = cap ? 2 * cap : 4096;
        }
        buf[n++] = (char)c;
    }
    fclose(f);
    cJSON *j = buf ? cJSON_ParseWithLength(buf, n) : NULL;
    free(buf);
    if (!j)
        return cl_err(CL_ERR_FORMAT, "%s: malformed JSON", path);
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "temperature"))) {
        o->greedy = v->valuedouble < 1e-5;
        if (!o->greedy)
            o->temperature = (float)v->valuedouble;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "top_p")))
        o->top_p = (float)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "top_k")))
        o->top_k = v->valuedouble > 0 ? (int64_t)v->valuedouble : 0;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "min_p")))
        o->min_p = (float)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "repetition_penalty")))
        o->repetition_penalty = (float)v->valuedouble;
    cJSON_Delete(j);
    if (cl_sampler_opts_check(o) != CL_OK)
        return cl_err_prefix(CL_ERR_FORMAT, "%s", path);
    return CL_OK;
}

static int setup(srv *s, const srv_opts *o, cl_model *m, cl_cache *c, cl_store *st,
                 cl_prefix *p)
{
    s->o = *o;
    s->m = m;
    s->c = c;
    s->st = st;
    s->p = p;
    s->created = (int64_t)time(NULL);
    if (!o->model_dir)
        return cl_err(CL_ERR_ARG, "serve: the model directory is required");
    if (o->max_seqs < 1 || o->max_queue < 0 || o->max_n < 1 || o->http_threads < 1)
        return cl_err(CL_ERR_ARG, "serve: max_seqs, max_n and http_threads must be >= 1");
    if (o->served_model_name) {
        if (strlen(o->served_model_name) >= sizeof s->model_name || !o->served_model_name[0])
            return cl_err(CL_ERR_ARG, "--served-model-name: 1 to %zu bytes",
                          sizeof s->model_name - 1);
        snprintf(s->model_name, sizeof s->model_name, "%s", o->served_model_name);
    } else { /* the directory's last component */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", o->model_dir);
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            dir[--n] = 0;
        const char *base = strrchr(dir, '/');
        /* a path component is at most 255 bytes (NAME_MAX) */
        snprintf(s->model_name, sizeof s->model_name, "%.255s", base ? base + 1 : dir);
    }
    CL_TRY(cl_tokenizer_load_dir(o->model_dir, &s->tok));
    CL_TRY(cl_chat_template_load_dir(o->model_dir, &s->tpl));
    CL_TRY(cl_chat_template_load_tokens(s->tpl, o->model_dir));
    cl_model_info mi;
    cl_model_info_get(m, &mi);
    s->n_stop_ids = cl_model_stop_ids(m, s->tok, s->stop_ids);
    srv_model_view *v = &s->view;
    v->model_name = s->model_name;
    v->context = o->max_context > 0 ? o->max_context : mi.max_position_embeddings;
    v->default_max_tokens = o->default_max_tokens;
    v->has_gka = mi.has_gka;
    v->reasoning = o->reasoning;
    v->tools = o->tools;
    v->test_hooks = o->test_hooks;
    v->max_n = o->max_n;
    v->tok = s->tok;
    v->tpl = s->tpl;
    CL_TRY(gen_defaults(o->model_dir, &v->defaults));
    cl_cache_stats cs;
    cl_cache_stats_get(c, &cs);
    s->fixed_cache = !cs.growable;
    s->page_tokens = cs.page_tokens;
    s->total_pages = cs.total_pages;
    return CL_OK;
}

/* Waits until every job is gone or the deadline passes; 1 if all are gone. */
static int wait_jobs(srv *s, double seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)seconds;
    until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->alive_mu);
    int rc = 0;
    while (s->alive > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->alive_cv, &s->alive_mu, &until);
    int done = s->alive == 0;
    pthread_mutex_unlock(&s->alive_mu);
    return done;
}

/* SIGTERM / SIGINT: the handler writes to a pipe the serving thread waits on (whichever
 * thread the signal lands on, e.g. one of OpenMP's). */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (write(sig_pipe[1], "x", 1) < 0) { /* nothing to do: a signal is already pending */
    }
    errno = saved;
}

static void wait_signal(void)
{
    char ch;
    while (read(sig_pipe[0], &ch, 1) < 0 && errno == EINTR) {
    }
}

int srv_run(const srv_opts *o, cl_model *m, cl_cache *c, cl_store *st, cl_prefix *p)
{
    srv *s = calloc(1, sizeof *s);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    srv_metrics_init(&s->metrics);
    pthread_mutex_init(&s->alive_mu, NULL);
    pthread_cond_init(&s->alive_cv, NULL);
    struct sigaction sa, old_term, old_int, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int rc = pipe2(sig_pipe, O_CLOEXEC) == 0 ? CL_OK
                                             : cl_err(CL_ERR_IO, "pipe: %s", strerror(errno));
    if (rc == CL_OK) {
        sigaction(SIGTERM, &sa, &old_term);
        sigaction(SIGINT, &sa, &old_int);
        sa.sa_handler = SIG_IGN; /* a client that left must not kill the server */
        sigaction(SIGPIPE, &sa, &old_pipe);
        rc = setup(s, o, m, c, st, p);
    }
    int port = 0;
    if (rc == CL_OK)
        rc = eng_start(s);
    if (rc == CL_OK && (rc = http_start(s, &port)) != CL_OK)
        eng_stop(s);
    if (rc == CL_OK) {
        if (o->on_listen)
            o->on_listen(o->user, o->host, port);
        wait_signal();
        /* drain: new requests get 503 (the socket stays open so that clients are told,
         * not left waiting), those in flight finish, then everything stops */
        atomic_store(&s->draining, 1);
        if (!wait_jobs(s, o->drain_timeout_s)) {
            eng_cancel_all(s);
            wait_jobs(s, 10);
        }
        eng_stop(s);
        http_stop(s);
        if (p)
            cl_prefix_flush(p);
    }
    if (sig_pipe[0] >= 0) {
        /* the process is on its way out: another SIGTERM must not cut short what the
         * caller still does (closing the store) */
        sa.sa_handler = rc == CL_OK ? SIG_IGN : SIG_DFL;
        sigaction(SIGTERM, rc == CL_OK ? &sa : &old_term, NULL);
        sigaction(SIGINT, rc == CL_OK ? &sa : &old_int, NULL);
        sigaction(SIGPIPE, &old_pipe, NULL);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
    cl_chat_template_free(s->tpl);
    cl_tokenizer_free(s->tok);
    srv_metrics_free(&s->metrics);
    pthread_mutex_destroy(&s->alive_mu);
    pthread_cond_destroy(&s->alive_cv);
    free(s);
    return rc;
}
