/* job.h - one request between its HTTP connection and the engine thread. A job is
 * shared: the HTTP side holds a reference until libmicrohttpd reports the request
 * completed, the engine one while it works on it; the last unref frees it. Everything
 * both sides touch (the connection, the answer, the flags) is under the job's mutex.
 *
 * The connection is suspended while it waits for the engine (before a non-streamed
 * answer is complete, or when a stream has no new bytes); the engine resumes it after
 * adding bytes or completing the answer (job_wake). */
#ifndef SRV_JOB_H
#define SRV_JOB_H

#include <pthread.h>
#include <stdint.h>

#include "reasoning.h"
#include "request.h"
#include "sbuf.h"
#include "srv.h"
#include "toolcall.h"

struct MHD_Connection;

typedef enum {
    JOB_GEN = 0,      /* chat or text completion */
    JOB_DOC_INGEST,   /* POST /v1/documents */
    JOB_DOC_LIST,     /* GET /v1/documents */
    JOB_DOC_GET,      /* GET /v1/documents/{id} */
    JOB_DOC_DELETE,   /* DELETE /v1/documents/{id} */
    JOB_DOC_PIN,      /* POST /v1/documents/{id}/pin | unpin */
} job_kind;

typedef struct srv_job srv_job;

/* One choice of a generation request (one scheduler request). Engine-owned. */
typedef struct {
    srv_job *job;
    int index;             /* in the answer */
    int prompt;            /* which prompt of the request */
    int sched_id;
    int submitted, done;
    cl_textstream *ts;
    rsn_stream rsn;
    tc_stream tc;
    char (*tool_ids)[40];  /* ids of streamed calls */
    int n_tool_ids;
    int n_calls;           /* tool calls found in the whole text */
    sbuf lp;               /* logprob entries (stream: not yet sent) */
    int lp_count;
    sbuf lp_pending;       /* the entry of the token on_token has not seen yet */
    int has_pending;
    sbuf lp_tok, lp_val, lp_top, lp_off; /* completions: the four arrays */
    int64_t text_offset;
    int64_t tokens;
    double t_last;
    cl_sched_result res;
} srv_choice;

/* Parameters of a document operation. */
typedef struct {
    cl_key id;                   /* get / delete / pin */
    int pin;                     /* pin: 1 pin, 0 unpin; ingest: pin what is stored */
    cl_ids prefix;               /* ingest: shared prefix */
    cl_ids *docs;                /* ingest: token ids per document */
    char **names;
    int n_docs;
} srv_doc_op;

struct srv_job {
    pthread_mutex_t mu;
    int refs;
    srv *s;
    job_kind kind;
    int endpoint;
    /* HTTP side, under mu */
    struct MHD_Connection *conn;
    int fd;                  /* the client's socket (disconnect checks while suspended) */
    int suspended, http_done;
    /* the answer, under mu */
    sbuf out;                /* streamed bytes; out.p[out_off..] not yet sent */
    size_t out_off;
    int accepted;            /* stream: the engine took the request (200 + events follow) */
    int finished;            /* nothing more will be added */
    int status;              /* HTTP status of a whole answer or of an error */
    char *body;              /* a whole answer (JSON) */
    size_t body_len;
    int cancel;              /* the client left: stop the work */
    /* the request: read-only once submitted */
    srv_gen_req req;
    srv_doc_op doc;
    char id[48];
    int64_t created;
    double t_arrival;
    /* engine-owned */
    srv_choice *ch;
    int n_ch, n_done;
    int64_t prompt_tokens, cached_tokens;
    int counted;             /* metrics taken */
};

/* A job with one reference (the HTTP side's). NULL if out of memory. */
srv_job *job_new(srv *s, job_kind kind, int endpoint);
void job_ref(srv_job *j);
void job_unref(srv_job *j);
/* With j->mu held: if the connection is suspended, marks it resumed and returns it;
 * the caller resumes it with job_resume after unlocking (libmicrohttpd is never called
 * with a job's mutex held by the engine). A suspended connection cannot close, so the
 * pointer stays valid in between. */
struct MHD_Connection *job_wake_take(srv_job *j);
void job_resume(struct MHD_Connection *c);
/* Locks, takes and resumes. */
void job_wake(srv_job *j);
/* Completes a job with a whole answer (takes body, a malloc'ed JSON text) and wakes
 * its connection. */
void job_answer(srv_job *j, int status, char *body, size_t len);
/* Completes a job with an OpenAI error object. */
void job_error(srv_job *j, const srv_error *e);
/* An error body {"error": {...}} (malloc'ed). */
char *srv_error_json(const srv_error *e, size_t *len);

#endif
