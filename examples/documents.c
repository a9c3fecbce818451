/* documents - retrieval over stored document states, through the public API only:
 * ingest two documents once (their states go to the store), then answer a question
 * from the composition of the two stored states, with no document prefilled again.
 *
 *   example_documents MODEL_DIR STORE_DIR DOC1.txt DOC2.txt "question" [compose_type]
 *
 * Prints the two document ids, then the answer, then how long restoring and composing
 * the documents took. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collage.h"

static int read_text(const char *path, cl_tokenizer *tok, cl_ids *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cl_err(CL_ERR_IO, "%s: cannot open", path);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        return cl_err(CL_ERR_IO, "%s: unreadable or larger than 64 KiB", path);
    /* documents are plain text: special-token strings in them are not tokens */
    return cl_tokenizer_encode(tok, buf, n, 0, out);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s MODEL_DIR STORE_DIR DOC1 DOC2 QUESTION [COMPOSE_TYPE]\n",
                argv[0]);
        return 2;
    }
    cl_model *m = NULL;
    cl_cache *c = NULL;
    cl_store *st = NULL;
    cl_prefix *p = NULL;
    cl_tokenizer *tok = NULL;
    cl_seq *composed = NULL;
    cl_ids doc[2] = {{0}}, q = {0}, answer = {0};
    cl_doc_result res[2];
    char *text = NULL;
    size_t len = 0;
    cl_compose_opts co;
    cl_compose_opts_default(&co);
    cl_compose_info info;
    memset(&info, 0, sizeof info);

    int rc = cl_model_load(argv[1], NULL, &m);
    if (rc == CL_OK)
        rc = cl_tokenizer_load_dir(argv[1], &tok);
    if (rc == CL_OK && argc == 7)
        rc = cl_compose_type_parse(argv[6], &co.kv, &co.ssm);
    /* documents ingested for every compose type keep the GDN transition product */
    cl_cache_opts cache_opts;
    if (rc == CL_OK) {
        cl_cache_opts_for_model(m, &cache_opts);
        cache_opts.track_transition = 1;
        rc = cl_cache_create(m, &cache_opts, &c);
    }
    if (rc == CL_OK)
        rc = cl_store_open(argv[2], NULL, &st);
    if (rc == CL_OK)
        rc = cl_prefix_create(st, m, c, NULL, &p);
    for (int i = 0; i < 2 && rc == CL_OK; i++)
        rc = read_text(argv[3 + i], tok, &doc[i]);
    if (rc == CL_OK) {
        cl_doc_input in[2] = {{doc[0].v, (int64_t)doc[0].n, argv[3]},
                              {doc[1].v, (int64_t)doc[1].n, argv[4]}};
        rc = cl_doc_ingest(p, NULL, 0, in, 2, NULL, res);
    }
    for (int i = 0; i < 2 && rc == CL_OK; i++) {
        char hex[33];
        printf("document %s: %lld tokens%s\n", cl_key_hex(&res[i].id, hex),
               (long long)res[i].tokens, res[i].cached ? " (already stored)" : "");
    }
    /* the question, composed after both documents' stored states */
    if (rc == CL_OK)
        rc = cl_tokenizer_encode(tok, argv[5], strlen(argv[5]), 1, &q);
    if (rc == CL_OK && q.n == 0)
        rc = cl_err(CL_ERR_ARG, "the question is empty");
    if (rc == CL_OK)
        rc = cl_seq_create(c, &composed);
    cl_key ids[2];
    if (rc == CL_OK) {
        ids[0] = res[0].id;
        ids[1] = res[1].id;
        rc = cl_doc_query(p, ids, 2, &co, q.v, (int64_t)q.n, composed, &info);
    }
    int64_t stop[CL_MAX_STOP_IDS];
    int n_stop = rc == CL_OK ? cl_model_stop_ids(m, tok, stop) : 0;
    if (rc == CL_OK) {
        cl_gen_opts go;
        cl_gen_opts_default(&go);
        go.max_new_tokens = 16;
        go.sampling.greedy = 1;
        go.eos_ids = stop;
        go.n_eos = n_stop;
        rc = cl_generate(m, composed, q.v + q.n - 1, 1, &go, &answer, NULL);
    }
    if (rc == CL_OK && answer.n && answer.v[answer.n - 1] >= 0)
        for (int i = 0; i < n_stop; i++)
            if (answer.v[answer.n - 1] == stop[i]) {
                answer.n--; /* a final stop token is not part of the answer */
                break;
            }
    if (rc == CL_OK)
        rc = cl_tokenizer_decode(tok, answer.v, answer.n, &text, &len);
    if (rc == CL_OK)
        printf("answer (%s): %.*s\nrestored in %.3f s, composed in %.3f s\n",
               cl_compose_type_name(co.kv, co.ssm), (int)len, text, info.load_s,
               info.compose_s);
    else
        fprintf(stderr, "error: %s\n", cl_errmsg());
    cl_free(text);
    for (int i = 0; i < 2; i++)
        cl_ids_free(&doc[i]);
    cl_ids_free(&q);
    cl_ids_free(&answer);
    cl_seq_free(composed);
    cl_prefix_free(p);
    cl_cache_free(c);
    if (st)
        cl_store_close(st);
    cl_tokenizer_free(tok);
    cl_model_free(m);
    return rc == CL_OK ? 0 : 1;
}
