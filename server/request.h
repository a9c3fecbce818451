/* request.h - OpenAI request bodies -> what the engine runs. Parses and checks every
 * field of POST /v1/chat/completions and /v1/completions on the HTTP thread (chat
 * template and tokenizer are shared by threads): a wrong type, an out-of-range value,
 * an unknown model or a prompt that does not fit the context is an srv_error naming
 * the field (HTTP 400), before the engine sees the request. Unknown fields are
 * ignored (as OpenAI and vLLM do); fields that ask for something collage lacks are
 * "not supported" errors naming them. */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <stdint.h>

#include "collage.h"

enum { SRV_API_CHAT = 0, SRV_API_COMPLETIONS = 1 };

/* An error answer: HTTP status, OpenAI error type, the field at fault, a message. */
typedef struct {
    int http;
    const char *type;
    char param[96];
    char msg[640];
} srv_error;

/* Fills e and returns -1 (so: return srv_fail(...)). param may be NULL. */
int srv_fail(srv_error *e, int http, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What request checks need to know about the served model (read-only after start). */
typedef struct {
    const char *model_name;
    int64_t context;              /* positions allowed */
    int64_t default_max_tokens;   /* budget without max_tokens (0: what the context leaves) */
    int has_gka;
    int reasoning, tools;         /* qwen3 reasoning parser, hermes tool parser enabled */
    int test_hooks;               /* accept "collage_force_text" (tests only) */
    int max_n;                    /* most choices per request */
    cl_sampler_opts defaults;     /* the model's generation_config.json sampling */
    const cl_tokenizer *tok;
    const cl_chat_template *tpl;
} srv_model_view;

typedef struct {
    int api;
    int stream, include_usage, n, echo;
    int logprobs, top_logprobs;   /* logprobs: report them; top: alternatives (0..20) */
    cl_sampler_opts sampling;
    int seed_given;
    int64_t max_tokens;           /* budget per choice */
    int64_t num_iter;             /* GKA iterations, -1: the model's */
    int ignore_eos;
    char **stop;
    int n_stop;
    cl_ids *prompts;              /* completions: one or more prompts; chat: one */
    int n_prompts;
    char **echo_text;             /* completions with echo: the text of each prompt */
    int reasoning, tools;         /* parsers active for this request */
    cl_key *docs;                 /* documents extension: compose these first */
    int n_docs;
    cl_compose_kv kv;
    cl_compose_ssm ssm;
    int max_tokens_given;
    const char *max_tokens_field; /* the name it was given under (static string) */
    cl_ids force;                 /* test hook: ids emitted instead of sampled */
} srv_gen_req;

/* Parses body (len bytes) for api into *out (free with srv_gen_req_free, also after a
 * failure). 0 or -1 with *e filled. */
int srv_parse_gen(const srv_model_view *v, int api, const char *body, size_t len,
                  srv_gen_req *out, srv_error *e);
void srv_gen_req_free(srv_gen_req *r);

/* Shared by the other endpoints: parses a JSON object body ("body: malformed JSON ..."
 * naming the position). */
struct cJSON;
int srv_parse_object(const char *body, size_t len, struct cJSON **out, srv_error *e);
/* The chat prompt of a request object (messages, tools, tool_choice,
 * chat_template_kwargs, add_generation_prompt) rendered by the model's template and
 * tokenized into *out. *tools_on (may be NULL): the tool parser applies. */
int srv_chat_prompt(const srv_model_view *v, const struct cJSON *o, cl_ids *out, int *tools_on,
                    srv_error *e);
/* "documents" ids (32 hex digits each) of field `field`. */
int srv_parse_doc_ids(const struct cJSON *arr, const char *field, cl_key **ids, int *n,
                      srv_error *e);
/* The JSON type name of an item ("a string", "an array", ...) for messages. */
const char *srv_json_type(const struct cJSON *j);

#endif
