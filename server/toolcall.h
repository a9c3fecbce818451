/* toolcall.h - the Hermes tool call parser: the model writes each call as
 *   <tool_call>{"name": "f", "arguments": {...}}</tool_call>
 * (Qwen3's chat template asks for exactly that; vLLM's `hermes` parser reads it).
 *   whole text  every <tool_call> region (closed, or open at the end) must be a JSON
 *               object with a string "name" and an "arguments" value; then the calls
 *               are returned and the content is the text before the first tag (NULL
 *               when empty). If any region fails, there are no calls and the whole
 *               text is content.
 *   streamed    text before the first <tool_call> streams as content (a partial tag
 *               is held back); then each call's name is reported once it is complete
 *               and its arguments as they grow (the raw JSON text of the value).
 * Text between and after calls is not content (as vLLM). */
#ifndef SRV_TOOLCALL_H
#define SRV_TOOLCALL_H

#include <stddef.h>

#include "sbuf.h"

typedef struct {
    char *name;
    char *arguments; /* JSON text of the arguments value */
} tc_call;

/* Whole-text extraction: *calls (free with tc_calls_free) and *n (0: none, then the
 * content is the whole text). *content points into text. Returns 0, or -1 when out of
 * memory. */
int tc_extract(const char *text, size_t len, tc_call **calls, int *n, const char **content,
               size_t *content_len);
void tc_calls_free(tc_call *calls, int n);

/* A streamed delta of call `index`: name (NUL-terminated) the first time, and/or the
 * next piece of its arguments. */
typedef void (*tc_delta_fn)(void *user, int index, const char *name, const char *args,
                            size_t args_len);

typedef struct {
    sbuf acc;          /* content-channel text so far */
    size_t sent;       /* bytes of it sent as content */
    int n_named;       /* calls whose name was reported */
    size_t *args_sent; /* per call: argument bytes reported */
    int cap;
    int oom;
} tc_stream;

void tc_init(tc_stream *t);
void tc_free(tc_stream *t);
/* Adds a delta: content now final goes to *content, call deltas to fn. */
void tc_push(tc_stream *t, const char *delta, size_t n, sbuf *content, tc_delta_fn fn,
             void *user);
/* End of text: content held back (a partial tag) is released when no call started. */
void tc_finish(tc_stream *t, sbuf *content, tc_delta_fn fn, void *user);
/* Calls reported so far. */
int tc_count(const tc_stream *t);

#endif
