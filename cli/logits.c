/* collage logits - fp32 logits of every position of a prompt, to safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common/ids.h"
#include "common/status.h"
#include "engine/generate.h"
#include "engine/seq.h"
#include "model_flags.h"
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
        {"input-ids", OPT_STR, &ids_arg, "IDS", "prompt ids: 1,2,3 or @FILE"},
        {"out", OPT_STR, &out, "F.safetensors", "output file (fp32 'logits' [T, V])"},
        {"mode", OPT_STR, &mode, "M",
         "prefill (chunked forms, default) | decode (one token at a time, recurrent forms)"},
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
    cl_model *m;
    if ((rc = cli_load_model("logits", &mf, &m)) != 0) {
        cl_ids_free(&ids);
        return rc;
    }
    int64_t V = m->cfg->vocab_size, T = (int64_t)ids.n;
    float *logits = malloc((size_t)(T * V) * sizeof *logits);
    cl_cache *c = NULL;
    cl_seq s = {0};
    rc = logits ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory for %lld x %lld logits",
                                 (long long)T, (long long)V);
    if (rc == CL_OK)
        rc = cl_cache_create(m, NULL, &c);
    if (rc == CL_OK)
        rc = cl_seq_init(&s, c);
    if (rc == CL_OK)
        rc = cl_check_prompt(m, &s, ids.v, T, mf.max_context);
    cl_store *store = NULL;
    cl_prefix pc;
    cl_prefix_capture caps[2];
    int ncap = 0, exit_code = 0;
    if (rc == CL_OK)
        exit_code = cli_open_store("logits", &stf, 0, m, c, &store, &pc);
    if (rc == CL_OK && !exit_code) {
        if (decode) {
            for (int64_t t = 0; t < T && rc == CL_OK; t++) {
                rc = cl_seq_feed(m, &s, ids.v + t, 1, 1, CL_LOGITS_LAST, logits + t * V);
                if (rc == CL_OK && store && (t == T - 2 || t == T - 1))
                    rc = cl_prefix_capture_now(&pc, &s, &caps[ncap++]);
            }
        } else {
            /* with a store: stop one token early to capture where the same prompt resumes */
            int64_t first = store && T > 1 ? T - 1 : T;
            rc = cl_seq_feed(m, &s, ids.v, first, 0, CL_LOGITS_ALL, logits);
            if (rc == CL_OK && first < T) {
                rc = cl_prefix_capture_now(&pc, &s, &caps[ncap++]);
                if (rc == CL_OK)
                    rc = cl_seq_feed(m, &s, ids.v + first, 1, 1, CL_LOGITS_ALL,
                                     logits + first * V);
            }
            if (rc == CL_OK && store)
                rc = cl_prefix_capture_now(&pc, &s, &caps[ncap++]);
        }
        if (rc == CL_OK && store)
            rc = cl_prefix_save(&pc, &s, ids.v, T, caps, ncap);
    }
    for (int i = 0; i < ncap; i++)
        cl_prefix_capture_free(&caps[i]);
    if (store)
        cl_store_close(store);
    if (rc == CL_OK && !exit_code)
        rc = cli_write_logits(out, logits, T, V);
    if (c) {
        cl_seq_release(&s);
        cl_cache_free(c);
    }
    free(logits);
    cl_model_free(m);
    cl_ids_free(&ids);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
