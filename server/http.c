#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "documents.h"
#include "engine.h"
#include "job.h"
#include "routes.h"

typedef enum {
    R_CHAT = 1, R_COMPLETIONS, R_MODELS, R_MODEL, R_HEALTH, R_VERSION, R_METRICS, R_TOKENIZE,
    R_DETOKENIZE, R_DOCS_LIST, R_DOCS_INGEST, R_DOC_GET, R_DOC_DELETE, R_DOC_PIN, R_DOC_UNPIN
} route;

/* One HTTP request on a connection. */
typedef struct {
    route r;
    int endpoint;
    sbuf body;
    int too_big, answered;
    srv_job *job;
    cl_key doc_id;
    char model[256];
} conn_ctx;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- answers ---------------------------------------------------------------------------- */

static enum MHD_Result respond(srv *s, conn_ctx *x, struct MHD_Connection *c, int status,
                               const char *ctype, char *body, size_t len, int retry_after)
{
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    srv_metrics_request(&s->metrics, x->endpoint, status);
    x->answered = 1;
    return ret;
}

static enum MHD_Result respond_error(srv *s, conn_ctx *x, struct MHD_Connection *c,
                                     const srv_error *e, int retry_after)
{
    size_t len = 0;
    char *body = srv_error_json(e, &len);
    return respond(s, x, c, e->http, "application/json", body, len, retry_after);
}

static enum MHD_Result respond_answer(srv *s, conn_ctx *x, struct MHD_Connection *c,
                                      srv_answer *a)
{
    return respond(s, x, c, a->status, a->ctype, a->body, a->len, 0);
}

/* ---- streams ---------------------------------------------------------------------------- */

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_job *j = cls;
    pthread_mutex_lock(&j->mu);
    size_t avail = j->out.n - j->out_off;
    if (avail) {
        size_t k = avail < max ? avail : max;
        memcpy(buf, j->out.p + j->out_off, k);
        j->out_off += k;
        if (j->out_off == j->out.n) {
            sb_reset(&j->out);
            j->out_off = 0;
        }
        pthread_mutex_unlock(&j->mu);
        return (ssize_t)k;
    }
    ssize_t ret = 0;
    if (j->cancel || j->out.oom)
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    else if (j->finished)
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    else { /* nothing yet: wait for the engine without holding a thread */
        j->suspended = 1;
        MHD_suspend_connection(j->conn);
    }
    pthread_mutex_unlock(&j->mu);
    return ret;
}

static void free_stream(void *cls) { job_unref(cls); }

/* Where a job's connection stands: answer, stream, close or wait (suspended). */
static enum MHD_Result check_job(srv *s, conn_ctx *x, struct MHD_Connection *c)
{
    srv_job *j = x->job;
    pthread_mutex_lock(&j->mu);
    if (j->cancel) {
        pthread_mutex_unlock(&j->mu);
        return MHD_NO; /* the client left (or shutdown): close */
    }
    if (j->finished && !j->accepted) {
        char *body = j->body;
        size_t len = j->body_len;
        int status = j->status;
        j->body = NULL;
        pthread_mutex_unlock(&j->mu);
        return respond(s, x, c, status, "application/json", body, len, status == 503);
    }
    if (j->accepted) {
        pthread_mutex_unlock(&j->mu);
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_stream, j, free_stream);
        if (!r)
            return MHD_NO;
        job_ref(j);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        srv_metrics_request(&s->metrics, x->endpoint, 200);
        x->answered = 1;
        return ret;
    }
    j->suspended = 1;
    MHD_suspend_connection(c);
    pthread_mutex_unlock(&j->mu);
    return MHD_YES;
}

static enum MHD_Result submit(srv *s, conn_ctx *x, struct MHD_Connection *c, srv_job *j)
{
    x->job = j;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&j->mu);
    j->conn = c;
    j->fd = ci ? ci->connect_fd : -1;
    pthread_mutex_unlock(&j->mu);
    eng_submit(s, j);
    return check_job(s, x, c);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static enum MHD_Result start_gen(srv *s, conn_ctx *x, struct MHD_Connection *c, int api)
{
    srv_gen_req r;
    srv_error e;
    if (srv_parse_gen(&s->view, api, x->body.p ? x->body.p : "", x->body.n, &r, &e)) {
        srv_gen_req_free(&r);
        return respond_error(s, x, c, &e, 0);
    }
    int limit = s->o.max_seqs + s->o.max_queue;
    if (atomic_fetch_add(&s->pending, 1) >= limit) {
        atomic_fetch_sub(&s->pending, 1);
        srv_gen_req_free(&r);
        srv_metrics_lock(&s->metrics);
        s->metrics.rejected_full++;
        srv_metrics_unlock(&s->metrics);
        srv_fail(&e, 429, NULL, "the server is busy: %d requests are waiting or running "
                                "(retry later)", limit);
        return respond_error(s, x, c, &e, 1);
    }
    srv_job *j = job_new(s, JOB_GEN, x->endpoint);
    if (!j) {
        atomic_fetch_sub(&s->pending, 1);
        srv_gen_req_free(&r);
        srv_fail(&e, 500, NULL, "out of memory");
        return respond_error(s, x, c, &e, 0);
    }
    j->req = r;
    j->t_arrival = now_s();
    snprintf(j->id, sizeof j->id, "%s", api == SRV_API_CHAT ? "chatcmpl-" : "cmpl-");
    srv_random_hex(j->id + strlen(j->id), 24);
    return submit(s, x, c, j);
}

static enum MHD_Result start_doc(srv *s, conn_ctx *x, struct MHD_Connection *c, job_kind kind)
{
    srv_error e;
    srv_job *j = job_new(s, kind, x->endpoint);
    if (!j) {
        srv_fail(&e, 500, NULL, "out of memory");
        return respond_error(s, x, c, &e, 0);
    }
    j->doc.id = x->doc_id;
    j->doc.pin = x->r == R_DOC_PIN;
    if (kind == JOB_DOC_INGEST &&
        docs_parse_ingest(s, x->body.p ? x->body.p : "", x->body.n, &j->doc, &e)) {
        job_unref(j);
        return respond_error(s, x, c, &e, 0);
    }
    return submit(s, x, c, j);
}

static enum MHD_Result dispatch(srv *s, conn_ctx *x, struct MHD_Connection *c)
{
    srv_answer a;
    memset(&a, 0, sizeof a);
    const char *body = x->body.p ? x->body.p : "";
    switch (x->r) {
    case R_CHAT: return start_gen(s, x, c, SRV_API_CHAT);
    case R_COMPLETIONS: return start_gen(s, x, c, SRV_API_COMPLETIONS);
    case R_MODELS: route_models(s, NULL, &a); break;
    case R_MODEL: route_models(s, x->model, &a); break;
    case R_HEALTH: route_health(s, &a); break;
    case R_VERSION: route_version(&a); break;
    case R_METRICS: route_metrics(s, &a); break;
    case R_TOKENIZE: route_tokenize(s, body, x->body.n, &a); break;
    case R_DETOKENIZE: route_detokenize(s, body, x->body.n, &a); break;
    case R_DOCS_LIST: return start_doc(s, x, c, JOB_DOC_LIST);
    case R_DOCS_INGEST: return start_doc(s, x, c, JOB_DOC_INGEST);
    case R_DOC_GET: return start_doc(s, x, c, JOB_DOC_GET);
    case R_DOC_DELETE: return start_doc(s, x, c, JOB_DOC_DELETE);
    case R_DOC_PIN:
    case R_DOC_UNPIN: return start_doc(s, x, c, JOB_DOC_PIN);
    }
    return respond_answer(s, x, c, &a);
}

/* ---- routing ------------------------------------------------------------------------------ */

static int is_hex_id(const char *p, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
              (p[i] >= 'A' && p[i] <= 'F')))
            return 0;
    return 1;
}

/* The route of method + url, or an error (404 unknown path, 405 wrong method). */
static int route_of(const char *method, const char *url, conn_ctx *x, srv_error *e)
{
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"),
        del = !strcmp(method, "DELETE");
    const char *want = NULL;
    x->endpoint = EP_OTHER;
#define ROUTE(path, ep, cond, method_name, rt)                                                   \
    if (!strcmp(url, path)) {                                                                    \
        x->endpoint = ep;                                                                        \
        if (cond) {                                                                              \
            x->r = rt;                                                                           \
            return 0;                                                                            \
        }                                                                                        \
        want = method_name;                                                                      \
    }
    ROUTE("/v1/chat/completions", EP_CHAT, post, "POST", R_CHAT)
    ROUTE("/v1/completions", EP_COMPLETIONS, post, "POST", R_COMPLETIONS)
    ROUTE("/v1/models", EP_MODELS, get, "GET", R_MODELS)
    ROUTE("/health", EP_HEALTH, get, "GET", R_HEALTH)
    ROUTE("/version", EP_OTHER, get, "GET", R_VERSION)
    ROUTE("/metrics", EP_METRICS, get, "GET", R_METRICS)
    ROUTE("/tokenize", EP_TOKENIZE, post, "POST", R_TOKENIZE)
    ROUTE("/detokenize", EP_DETOKENIZE, post, "POST", R_DETOKENIZE)
#undef ROUTE
    if (!strcmp(url, "/v1/documents")) {
        x->endpoint = EP_DOCUMENTS;
        if (get || post) {
            x->r = get ? R_DOCS_LIST : R_DOCS_INGEST;
            return 0;
        }
        want = "GET, POST";
    }
    if (!strncmp(url, "/v1/models/", 11) && url[11] && strlen(url + 11) < sizeof x->model) {
        x->endpoint = EP_MODELS;
        if (get) {
            snprintf(x->model, sizeof x->model, "%s", url + 11);
            x->r = R_MODEL;
            return 0;
        }
        want = "GET";
    }
    if (!strncmp(url, "/v1/documents/", 14)) {
        const char *id = url + 14, *slash = strchr(id, '/');
        size_t n = slash ? (size_t)(slash - id) : strlen(id);
        if (is_hex_id(id, n)) {
            char hex[33];
            memcpy(hex, id, 32);
            hex[32] = 0;
            cl_key_parse(hex, &x->doc_id);
            x->endpoint = EP_DOCUMENTS;
            if (!slash) {
                if (get || del) {
                    x->r = get ? R_DOC_GET : R_DOC_DELETE;
                    return 0;
                }
                want = "GET, DELETE";
            } else if (!strcmp(slash, "/pin") || !strcmp(slash, "/unpin")) {
                if (post) {
                    x->r = !strcmp(slash, "/pin") ? R_DOC_PIN : R_DOC_UNPIN;
                    return 0;
                }
                want = "POST";
            }
        } else if (!slash || !slash[1]) {
            x->endpoint = EP_DOCUMENTS;
            return srv_fail(e, 404, "id", "%s: not a document id (32 hex digits)", url);
        }
    }
    if (want)
        return srv_fail(e, 405, NULL, "%s %s: method not allowed (use %s)", method, url, want);
    return srv_fail(e, 404, NULL, "%s %s: no such endpoint", method, url);
}

/* Constant-time comparison of the bearer token with the key. */
static int auth_ok(const srv *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7))
        return 0;
    const char *got = h + 7, *key = s->o.api_key;
    size_t gl = strlen(got), kl = strlen(key);
    unsigned diff = (unsigned)(gl ^ kl);
    for (size_t i = 0; i < kl; i++)
        diff |= (unsigned)(unsigned char)key[i] ^ (unsigned)(unsigned char)(i < gl ? got[i] : 0);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    (void)version;
    srv *s = cls;
    conn_ctx *x = *req_cls;
    srv_error e;
    if (!x) { /* headers are in: route, key, limits, before any body is read */
        if (!(x = calloc(1, sizeof *x)))
            return MHD_NO;
        *req_cls = x;
        if (route_of(method, url, x, &e))
            return respond_error(s, x, c, &e, 0);
        if (s->o.api_key && !strncmp(url, "/v1/", 4) && !auth_ok(s, c)) {
            srv_fail(&e, 401, NULL, "missing or wrong API key (send Authorization: Bearer KEY)");
            return respond_error(s, x, c, &e, 0);
        }
        if (atomic_load(&s->draining) && x->r != R_HEALTH && x->r != R_METRICS) {
            srv_fail(&e, 503, NULL, "the server is shutting down");
            return respond_error(s, x, c, &e, 1);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body_bytes) {
            srv_fail(&e, 413, NULL, "body: larger than the limit of %zu bytes",
                     s->o.max_body_bytes);
            return respond_error(s, x, c, &e, 0);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!x->answered && !x->too_big) {
            if (x->body.n + *upload_size > s->o.max_body_bytes)
                x->too_big = 1;
            else
                sb_put(&x->body, upload, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (x->answered)
        return MHD_YES;
    if (x->job)
        return check_job(s, x, c); /* resumed by the engine */
    if (x->too_big) {
        srv_fail(&e, 413, NULL, "body: larger than the limit of %zu bytes", s->o.max_body_bytes);
        return respond_error(s, x, c, &e, 0);
    }
    if (x->body.oom) {
        srv_fail(&e, 500, NULL, "out of memory reading the body");
        return respond_error(s, x, c, &e, 0);
    }
    return dispatch(s, x, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    srv *s = cls;
    conn_ctx *x = *req_cls;
    if (!x)
        return;
    *req_cls = NULL;
    srv_job *j = x->job;
    if (j) {
        pthread_mutex_lock(&j->mu);
        j->conn = NULL;
        j->fd = -1;
        j->http_done = 1;
        int stop = !j->finished && !j->cancel;
        if (stop)
            j->cancel = 1;
        pthread_mutex_unlock(&j->mu);
        if (stop) /* the client left before its answer was complete */
            eng_cancel(s, j);
        job_unref(j);
    }
    sb_free(&x->body);
    free(x);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    const char *lvl = getenv("COLLAGE_LOG");
    if (!lvl || (strcmp(lvl, "info") && strcmp(lvl, "debug")))
        return;
    fprintf(stderr, "collage serve: http: ");
    vfprintf(stderr, fmt, ap);
}

/* ---- the daemon ---------------------------------------------------------------------------- */

static int bind_socket(const char *host, int port, int *fd_out, int *family, int *bound)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0)
        return cl_err(CL_ERR_ARG, "--host %s: %s", host, gai_strerror(g));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
            err = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *family = a->ai_family;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return cl_err(CL_ERR_IO, "cannot listen on %s:%d: %s", host, port, strerror(err));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *fd_out = fd;
    return CL_OK;
}

int http_start(srv *s, int *bound_port)
{
    int fd = -1, family = AF_INET;
    CL_TRY(bind_socket(s->o.host, s->o.port, &fd, &family, bound_port));
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.http_threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        s->o.max_header_bytes, MHD_OPTION_CONNECTION_LIMIT, 4096u,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u /* idle seconds; waiting connections are
        suspended and do not time out */, MHD_OPTION_END);
    if (!s->d) {
        close(fd);
        return cl_err(CL_ERR_IO, "cannot start the HTTP daemon on %s:%d", s->o.host,
                      *bound_port);
    }
    return CL_OK;
}

void http_stop(srv *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    s->d = NULL;
}
