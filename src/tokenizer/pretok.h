/* pretok.h - the regex pre-tokenizer (HF "Split" with behavior Isolated): cuts text
 * into the chunks that BPE then works on, one at a time.
 *
 * Patterns in tokenizer.json are written for Oniguruma (what HF tokenizers uses).
 * They are compiled with PCRE2 (UTF + UCP, JIT when available) after one rewrite
 * that keeps Oniguruma's meaning: `\s`/`\S` become `\p{White_Space}`/`\P{White_Space}`
 * (PCRE2's UCP `\s` also matches U+180E, Oniguruma's does not). */
#ifndef CL_TOKENIZER_PRETOK_H
#define CL_TOKENIZER_PRETOK_H

#include <stddef.h>

typedef struct cl_pretok cl_pretok;

/* Compiles an Oniguruma-syntax pattern. `what` names it in errors
 * ("<what>: bad regex at offset N: ..."). */
int cl_pretok_create(const char *pattern, const char *what, cl_pretok **out);
void cl_pretok_free(cl_pretok *p);

/* Called for every chunk in order; a nonzero return stops the split and is returned. */
typedef int (*cl_pretok_fn)(void *ctx, const char *chunk, size_t len);

/* Splits valid UTF-8 text: every match is a chunk and so is every gap between
 * matches (Isolated), so the chunks concatenate back to the text. Safe to call
 * from several threads at once on one cl_pretok. */
int cl_pretok_split(const cl_pretok *p, const char *text, size_t len, cl_pretok_fn fn,
                    void *ctx);

/* The Qwen2/Qwen3 pre-tokenizer pattern, as written in their tokenizer.json. */
extern const char cl_pretok_qwen2_pattern[];
/* The pattern HF ByteLevel applies when its use_regex is true (GPT-2's). */
extern const char cl_pretok_gpt2_pattern[];

#endif
