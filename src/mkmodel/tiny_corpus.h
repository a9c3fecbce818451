/* tiny_corpus.h - a fixed English text (prose, some C and Python, numbers) that
 * the tiny tokenizer learns its merges from; the tokenizer benchmark reuses it. */
#ifndef CL_TOKENIZER_TINY_CORPUS_H
#define CL_TOKENIZER_TINY_CORPUS_H

#include <stddef.h>

/* Paragraphs, to be concatenated in order. */
extern const char *const cl_tiny_corpus[];
extern const size_t cl_tiny_corpus_count;

#endif
