/* cli_ctx.h - what the model-running verbs share: the model + cache + sequence +
 * store set-up and teardown, streamed text output with stop ids, the chat turn
 * rendering, and the JSON pieces of a generation report. */
#ifndef CLI_CTX_H
#define CLI_CTX_H

#include <stdint.h>

#include "engine/session.h"
#include "engine/textstream.h"
#include "model_flags.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat.h"

typedef struct {
    cl_model *m;
    cl_cache *c;
    cl_seq s;
    int has_seq;
    cl_store *store; /* NULL when no store is used */
    cl_prefix pc;
} cli_ctx;

/* Loads the model, makes a cache (co: NULL for the model's defaults) and one
 * sequence, opens the store as the flags say (sf may be NULL: no store). Returns 0
 * or an exit code (the error is printed); cli_ctx_close is safe either way. */
int cli_ctx_open(cli_ctx *x, const char *verb, const cli_model_flags *mf,
                 const cli_store_flags *sf, int store_default_on, const cl_cache_opts *co);
void cli_ctx_close(cli_ctx *x);
/* The prefix cache, or NULL without a store. */
cl_prefix *cli_ctx_prefix(cli_ctx *x);

/* Streams generated text to stdout (or collects it) through a cl_textstream. */
typedef struct {
    cl_textstream ts;
    int failed; /* status of a failed push */
} cli_text;

/* cl_token_cb for cli_text (user = cli_text *). */
int cli_text_on_token(void *user, int32_t id);
/* Stop ids of a chat model: the config's EOS ids, <|im_end|> and <|endoftext|>. */
int cli_stop_ids(const cl_model *m, const cl_tokenizer *tok, int64_t ids[CL_MAX_EOS + 2]);
/* Renders [system?, user] with the generation prompt (thinking off: no_think). */
int cli_render_user_turn(const cl_chat_template *t, const char *system, const char *user,
                         int no_think, char **out);

/* JSON pieces: "key":[ids] and the timing/count fields of a generation report
 * (each starts with a comma). */
void cli_json_ids(const char *key, const cl_ids *ids);
void cli_json_gen_stats(int64_t prompt_tokens, const cl_session_stats *ss, const char *stop);
const char *cli_stop_name(cl_stop_reason r);

#endif
