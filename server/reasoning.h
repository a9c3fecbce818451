/* reasoning.h - the qwen3 reasoning parser: splits generated text into the model's
 * reasoning (between <think> and </think>) and the answer, as vLLM's `qwen3` parser
 * does (spec SERVING.md §2, §7):
 *   whole text  both tags present: reasoning = between the first <think> and the next
 *               </think>, content = after it (NULL when empty; text before <think> is
 *               dropped); otherwise everything is content.
 *   streamed    text before <think> is content, text after it reasoning until
 *               </think>, then content again; a tag split across deltas is held back
 *               until it is complete or cannot be one any more.
 * Works on text, so it is correct whether the tags are single tokens or not. */
#ifndef SRV_REASONING_H
#define SRV_REASONING_H

#include <stddef.h>

#include "sbuf.h"

/* Whole-text extraction. *reasoning / *content point into text (lengths in *_len);
 * NULL when absent. */
void rsn_extract(const char *text, size_t len, const char **reasoning, size_t *reasoning_len,
                 const char **content, size_t *content_len);

typedef struct {
    int phase;   /* 0 before <think>, 1 inside, 2 after </think> */
    sbuf held;   /* a tail that may be the start of the tag looked for */
} rsn_stream;

void rsn_init(rsn_stream *r);
void rsn_free(rsn_stream *r);
/* Adds a delta; appends what is now final to *reasoning and *content (either may get
 * nothing). */
void rsn_push(rsn_stream *r, const char *delta, size_t n, sbuf *reasoning, sbuf *content);
/* End of text: releases what was held back. */
void rsn_finish(rsn_stream *r, sbuf *reasoning, sbuf *content);

/* Length of the longest proper suffix of s[0..n) that is a prefix of tag (0 if none):
 * how much text to hold back while tag may still be arriving. Shared with the tool
 * call parser. */
size_t tag_overlap(const char *s, size_t n, const char *tag);
/* First occurrence of tag in s[0..n) or NULL. */
const char *find_tag(const char *s, size_t n, const char *tag);

#endif
