#include "tokenizer/tiny_tokenizer.h"

#include "common/status.h"

int cl_tiny_tokenizer_write(const char *dir, int64_t vocab_size, cl_tiny_tok_ids *ids)
{
    (void)dir;
    (void)vocab_size;
    (void)ids;
    return cl_err(CL_ERR_UNSUPPORTED, "tiny tokenizer generation is not yet supported");
}
