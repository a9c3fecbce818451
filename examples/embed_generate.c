/* embed_generate - collage as a library: load a model, tokenize a prompt, generate
 * with prefix reuse through a store, print the text.
 *
 *   example_embed_generate MODEL_DIR STORE_DIR "prompt text"
 *
 * Run it twice: the second run restores the prompt from the store (cached tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collage.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_DIR STORE_DIR PROMPT\n", argv[0]);
        return 2;
    }
    cl_model *m = NULL;
    cl_cache *c = NULL;
    cl_store *st = NULL;
    cl_tokenizer *tok = NULL;
    cl_seq *s = NULL;
    cl_ids prompt = {0}, out = {0};
    char *text = NULL;
    size_t len = 0;
    cl_prefix *pc = NULL;
    cl_session_stats stats;
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = 24;
    go.sampling.greedy = 1;

    int rc = cl_model_load(argv[1], NULL, &m);
    if (rc == CL_OK)
        rc = cl_tokenizer_load_dir(argv[1], &tok);
    if (rc == CL_OK)
        rc = cl_tokenizer_encode(tok, argv[3], strlen(argv[3]), 1, &prompt);
    if (rc == CL_OK)
        rc = cl_cache_create(m, NULL, &c);
    if (rc == CL_OK)
        rc = cl_seq_create(c, &s);
    if (rc == CL_OK)
        rc = cl_store_open(argv[2], NULL, &st);
    if (rc == CL_OK)
        rc = cl_prefix_create(st, m, c, NULL, &pc);
    if (rc == CL_OK)
        rc = cl_session_generate(pc, m, s, NULL, prompt.v, (int64_t)prompt.n, &go, &out,
                                 &stats);
    if (rc == CL_OK)
        rc = cl_tokenizer_decode(tok, out.v, out.n, &text, &len);
    if (rc == CL_OK)
        printf("%lld prompt tokens, %lld from the store\n%.*s\n", (long long)prompt.n,
               (long long)stats.cached_tokens, (int)len, text);
    else
        fprintf(stderr, "error: %s\n", cl_errmsg());
    cl_free(text);
    cl_ids_free(&prompt);
    cl_ids_free(&out);
    cl_prefix_free(pc);
    cl_seq_free(s);
    cl_cache_free(c);
    if (st)
        cl_store_close(st);
    cl_tokenizer_free(tok);
    cl_model_free(m);
    return rc == CL_OK ? 0 : 1;
}
