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

#include "common/ids.h"

typedef struct cl_tokenizer cl_tokenizer;

/* Loads tokenizer.json. Errors name the file and the key at fault (CL_ERR_IO,
 * CL_ERR_FORMAT for malformed content, CL_ERR_UNSUPPORTED). */
int cl_tokenizer_load(const char *tokenizer_json_path, cl_tokenizer **out);
/* Loads DIR/tokenizer.json. */
int cl_tokenizer_load_dir(const char *model_dir, cl_tokenizer **out);
void cl_tokenizer_free(cl_tokenizer *t);

/* Encodes len bytes of UTF-8 text and appends the ids to out (whose n/cap/v may
 * already hold ids). parse_special=1: added tokens written in the text become their
 * ids, as HF encode does; 0: the text is all plain text (llama.cpp
 * parse_special=false). Never adds BOS/EOS. Invalid UTF-8 is CL_ERR_FORMAT naming
 * the byte offset. */
int cl_tokenizer_encode(const cl_tokenizer *t, const char *text, size_t len, int parse_special,
                        cl_ids *out);

/* The exact bytes of the ids concatenated (byte map reversed; added tokens give
 * their literal text) in a malloc'd NUL-terminated buffer; *len excludes the NUL.
 * An id that has no token is CL_ERR_RANGE naming it. */
int cl_tokenizer_decode(const cl_tokenizer *t, const int32_t *ids, size_t n, char **out,
                        size_t *len);

/* The raw bytes of one token (not NUL-terminated; valid while t lives), for
 * streaming output. CL_ERR_RANGE if the id has no token. A token may end inside a
 * UTF-8 character: a streaming printer must hold back incomplete characters. */
int cl_tokenizer_token_bytes(const cl_tokenizer *t, int32_t id, const char **bytes, size_t *len);

/* The id of the token whose text is exactly token_text: an added token such as
 * "<|im_end|>", or a regular token by its raw bytes ("\n", " the") or, failing
 * that, by its spelling in the vocabulary ("Ċ", "Ġthe"); -1 if none. */
int32_t cl_tokenizer_find(const cl_tokenizer *t, const char *token_text);

/* 1 + the highest token id (ids below it may still lack a token). */
int32_t cl_tokenizer_vocab_size(const cl_tokenizer *t);
/* 1 if id is an added token marked "special": true (e.g. <|im_end|>, not <think>). */
int cl_tokenizer_is_special(const cl_tokenizer *t, int32_t id);
/* 1 if id is an added token (special or not). */
int cl_tokenizer_is_added(const cl_tokenizer *t, int32_t id);

#endif
