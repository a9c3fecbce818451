/* bpe.h - byte-level BPE tokenizer read from a Hugging Face tokenizer.json (the
 * Qwen2/Qwen3 kind): text <-> token ids, exactly as HF `tokenizers` encodes.
 *
 * Encode pipeline (read from the file, not assumed): split the text on added tokens
 * (leftmost, longest first) -> NFC on the other pieces (normalizer "NFC") -> regex
 * pre-tokenizer ("Split", Isolated) -> GPT-2 byte map -> BPE by lowest merge rank.
 * Tokenizers of another kind (a non-BPE model, a Metaspace pre-tokenizer, ...) are
 * refused at load with CL_ERR_UNSUPPORTED "... is not yet supported".
 *
 * A loaded tokenizer is read-only: every function may be called from several
 * threads at once (encode keeps a word cache that it skips when another thread
 * holds it). */
#ifndef CL_TOKENIZER_BPE_H
#define CL_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "collage.h"
#include "common/ids.h"

/* Public (collage.h): load / load_dir / free, encode, decode, token_bytes, find,
 * vocab_size, is_special. */

/* 1 if id is an added token (special or not). */
int cl_tokenizer_is_added(const cl_tokenizer *t, int32_t id);

#endif
