/* tiny_tokenizer.h - writes a small byte-level BPE tokenizer (tokenizer.json +
 * tokenizer_config.json with a chat template) for mkmodel's tiny presets, in the
 * HF format the real Qwen tokenizer uses, so the demo and `collage run` work on a
 * fresh clone without ../shared. Deterministic: merges are learned from a text
 * embedded in the source. */
#ifndef CL_TINY_TOKENIZER_H
#define CL_TINY_TOKENIZER_H

#include <stdint.h>

typedef struct {
    int32_t endoftext, im_start, im_end, think, think_end; /* special token ids */
    int32_t newline;                                         /* id of "\n" */
} cl_tiny_tok_ids;

/* Writes DIR/tokenizer.json and DIR/tokenizer_config.json for a model whose
 * embedding has vocab_size rows (all token ids < vocab_size). */
int cl_tiny_tokenizer_write(const char *dir, int64_t vocab_size, cl_tiny_tok_ids *ids);

#endif
