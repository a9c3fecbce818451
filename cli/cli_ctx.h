/* cli_ctx.h - what the model-running verbs share: the model + cache + sequence + store
 * set-up and teardown, streamed text output with stop strings, the chat turn
 * rendering, the JSON report (one object on stdout, also on failure), file input and a
 * clock. Everything goes through the public API (collage.h). */
#ifndef CLI_CTX_H
#define CLI_CTX_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "collage.h"
#include "model_flags.h"

typedef struct {
    cl_model *m;
    cl_cache *c;
    cl_seq *s;
    cl_store *store;  /* NULL when no store is used */
    cl_prefix *pc;    /* NULL when no store is used */
    int64_t vocab;
} cli_ctx;

/* Loads the model, makes a cache (co: NULL for the model's defaults) and one sequence,
 * opens the store as the flags say (sf may be NULL: no store). Returns 0 or an exit code
 * (the error is printed); cli_ctx_close is safe either way. */
int cli_ctx_open(cli_ctx *x, const char *verb, const cli_model_flags *mf,
                 const cli_store_flags *sf, int store_default_on, const cl_cache_opts *co);
void cli_ctx_close(cli_ctx *x);

/* Generated text streamed to `out` (NULL: collected only) through a text stream. */
typedef struct {
    cl_textstream *ts;
    FILE *out;
    int failed; /* status of a failed push */
} cli_text;

int cli_text_open(cli_text *t, const cl_tokenizer *tok, FILE *out, const char *const *stop,
                  int n_stop, const int64_t *eos, int n_eos);
/* cl_token_cb for cli_text (user = cli_text *). */
int cli_text_on_token(void *user, int32_t id);
/* Writes what is still held back. */
void cli_text_finish(cli_text *t);
void cli_text_close(cli_text *t);

/* Renders [system?, user] with the generation prompt (thinking off: no_think). */
int cli_render_user_turn(const cl_chat_template *t, const char *system, const char *user,
                         int no_think, char **out);

/* JSON reports: one object on stdout. Generated text goes in through cli_json_text
 * (made valid UTF-8: invalid bytes become U+FFFD). */
void cli_json_text(cJSON *o, const char *key, const char *text, size_t len);
cJSON *cli_json_ids(const cl_ids *ids);
/* Adds the counts and timings of a generation report. */
void cli_json_gen_stats(cJSON *o, int64_t prompt_tokens, const cl_session_stats *ss,
                        const char *stop);
const char *cli_stop_name(cl_stop_reason r);
/* Prints obj (one line) and frees it; exit code 0, or 1 if stdout failed. */
int cli_json_emit(cJSON *obj);
/* A failure under --json: prints {"error": {"message", "code"}} (plus obj's fields when
 * given, e.g. what was done before the failure) on stdout, the one-line error on
 * stderr, and returns the exit code. */
int cli_json_fail(int status, cJSON *obj);

/* Reads a whole file (NUL-terminated; *len excludes it; len may be NULL) / stdin. */
int cli_read_file(const char *path, char **out, size_t *len);
int cli_read_stdin(char **out, size_t *len);
/* Monotonic seconds. */
double cli_now(void);

#endif
