/* routes.h - the endpoints answered on the HTTP thread, without the engine: the model
 * list, health, version, metrics, and vLLM's /tokenize and /detokenize. Each fills an
 * answer: status, content type and a malloc'ed body. */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <stddef.h>

#include "request.h"
#include "srv.h"

typedef struct {
    int status;
    const char *ctype;
    char *body;
    size_t len;
} srv_answer;

/* GET /v1/models (name NULL) or /v1/models/{name}. */
void route_models(srv *s, const char *name, srv_answer *a);
void route_health(srv *s, srv_answer *a);
void route_version(srv_answer *a);
void route_metrics(srv *s, srv_answer *a);
/* POST /tokenize: {"prompt": text, "add_special_tokens"} or {"messages", ...}. */
void route_tokenize(srv *s, const char *body, size_t len, srv_answer *a);
/* POST /detokenize: {"tokens": [ids]}. */
void route_detokenize(srv *s, const char *body, size_t len, srv_answer *a);
/* An error answer. */
void route_error(const srv_error *e, srv_answer *a);

#endif
