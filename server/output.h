/* output.h - a generation request's answer in OpenAI's shapes, built on the engine
 * thread as tokens arrive: per-token text through the text stream (UTF-8 safe, stop
 * strings), then the reasoning and tool-call parsers (chat), then either a Server-Sent
 * Event chunk appended to the job's stream or, for a whole answer, the final object
 * (chat.completion / text_completion) with usage. Logprobs follow OpenAI's chat
 * ({"content": [{token, logprob, bytes, top_logprobs}]}) and legacy completions
 * ({tokens, token_logprobs, top_logprobs, text_offset}) formats. */
#ifndef SRV_OUTPUT_H
#define SRV_OUTPUT_H

#include "job.h"

/* Sets up the choices of j (n per prompt; text streams with the request's stop
 * strings). CL status. */
int out_job_init(srv_job *j);
/* cl_gen_opts callbacks (user = the srv_choice). */
int out_on_token(void *user, int32_t id);
int out_on_logprobs(void *user, const cl_token_logprobs *lp);
/* Stream: the opening chunks (the assistant role of each chat choice; the echoed
 * prompt of a completion). */
void out_stream_begin(srv_job *j);
/* A choice's scheduler request finished (c->res set): releases held-back text and, when
 * streaming, sends its last chunk with the finish reason. */
void out_choice_end(srv_choice *c);
/* Stream: the usage chunk (stream_options.include_usage) and "data: [DONE]". */
void out_stream_end(srv_job *j);
/* Stream: an error event after the stream began, then [DONE]. */
void out_stream_error(srv_job *j, const char *msg);
/* The whole answer of a non-streamed request (malloc'ed JSON), NULL if out of memory. */
char *out_body(srv_job *j, size_t *len);
/* CPU seconds this thread spent in out_on_token (the server's per-token work). */
double out_callback_seconds(void);
/* Frees the engine thread's scratch buffers (at its exit). */
void out_thread_cleanup(void);

#endif
