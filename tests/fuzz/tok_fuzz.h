/* tok_fuzz.h - the tokenizer fuzz loop: `iters` mutations of the tokenizer.json at
 * seed_path, each loaded from a scratch file. No crash; every failure a
 * FORMAT/UNSUPPORTED status with a one-line message naming the file; every
 * tokenizer that loads encodes sample texts (plain and with special tokens) to ids
 * it can decode, and decodes plain BPE output back to the exact text. */
#ifndef TOK_FUZZ_H
#define TOK_FUZZ_H

#include <stdint.h>

void fz_tokenizer_run(const char *seed_path, const char *tag, int iters, uint64_t seed);

#endif
