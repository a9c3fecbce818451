/* collage logits - fp32 logits of every position of a prompt, to safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

int cmd_logits(int argc, char **argv)
{
    cli_model_flags mf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_store_flags_init(&stf);
    const char *ids_arg = NULL, *out = NULL, *mode = "prefill";
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_STORE_OPTS(stf),
        {"input-ids", OPT_STR, &ids_arg, "IDS", "prompt ids: 1,2,3 or @FILE", 0, 0},
        {"out", OPT_STR, &out, "F.safetensors", "output file (fp32 'logits' [T, V])", 0, 0},
        {"mode", OPT_STR, &mode, "M",
         "prefill (chunked forms, default) | decode (one token at a time, recurrent forms)", 0,
         0},
        {0},
    };
    cli_spec spec = {"logits", "--model DIR --input-ids 1,2,3 --out F.safetensors [--mode M]",
                     "Writes the logits of every position of the prompt as fp32 'logits' [T, V].\n"
                     "With --store the prompt's state is stored (never restored: every\n"
                     "position's logits are computed).",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!ids_arg || !out)
        return cli_usage_error("logits", "--input-ids and --out are required");
    int decode = !strcmp(mode, "decode");
    if (!decode && strcmp(mode, "prefill"))
        return cli_usage_error("logits", "--mode must be prefill or decode");
    cl_ids ids;
    if ((rc = cl_ids_parse(ids_arg, "--input-ids", &ids)) != CL_OK)
        return cli_fail(rc);
    if (ids.n == 0) {
        cl_ids_free(&ids);
        return cli_usage_error("logits", "--input-ids is empty");
    }
    cli_ctx x;
    int exit_code = cli_ctx_open(&x, "logits", &mf, &stf, 0, NULL);
    int64_t V = x.vocab, T = (int64_t)ids.n;
    float *logits = NULL;
    if (!exit_code && !(logits = malloc((size_t)(T * V) * sizeof *logits)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for %lld x %lld logits", (long long)T,
                    (long long)V);
    if (rc == CL_OK && !exit_code) {
        cl_model_info mi;
        cl_model_info_get(x.m, &mi);
        int64_t limit = mf.max_context ? mf.max_context : mi.max_position_embeddings;
        if (T > limit)
            rc = cl_err(CL_ERR_RANGE,
                        "context overflow: %lld tokens exceed the context of %lld positions "
                        "(--max-context to change)",
                        (long long)T, (long long)limit);
    }
    /* with a store, the state one token before the end (where the same prompt resumes)
     * and at the end are stored */
    if (rc == CL_OK && !exit_code && decode) {
        for (int64_t t = 0; t < T && rc == CL_OK; t++) {
            rc = cl_seq_feed(x.m, x.s, ids.v + t, 1, 1, CL_LOGITS_LAST, logits + t * V);
            if (rc == CL_OK && x.pc && (t == T - 2 || t == T - 1))
                rc = cl_prefix_store(x.pc, x.s, ids.v, t + 1);
        }
    } else if (rc == CL_OK && !exit_code) {
        int64_t first = x.pc && T > 1 ? T - 1 : T;
        rc = cl_seq_feed(x.m, x.s, ids.v, first, 0, CL_LOGITS_ALL, logits);
        if (rc == CL_OK && first < T) {
            rc = cl_prefix_store(x.pc, x.s, ids.v, first);
            if (rc == CL_OK)
                rc = cl_seq_feed(x.m, x.s, ids.v + first, 1, 1, CL_LOGITS_ALL, logits + first * V);
        }
        if (rc == CL_OK && x.pc)
            rc = cl_prefix_store(x.pc, x.s, ids.v, T);
    }
    if (rc == CL_OK && !exit_code) {
        int64_t shape[2] = {T, V};
        rc = cl_tensor_file_write_f32(out, "logits", logits, 2, shape);
    }
    free(logits);
    cli_ctx_close(&x);
    cl_ids_free(&ids);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
