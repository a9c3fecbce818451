/* collage mkmodel - write a random-weight checkpoint from a preset. */
#include <stdio.h>

#include "args.h"
#include "common/status.h"
#include "model/mkmodel.h"
#include "model/presets.h"
#include "verbs.h"

int cmd_mkmodel(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL, *pattern = NULL, *dtype = NULL;
    int64_t seed = 0, layers = 0;
    int list = 0, no_tok = 0;
    cli_opt opts[] = {
        {"preset", OPT_STR, &preset, "NAME", "preset (see --list)"},
        {"out", OPT_STR, &out, "DIR", "output directory (created)"},
        {"seed", OPT_INT, &seed, "N", "random seed (default 0)"},
        {"pattern", OPT_STR, &pattern, "P",
         "hybrid_override_pattern, e.g. '*-GKA' (repeated to the layer count)"},
        {"dtype", OPT_STR, &dtype, "T", "float32 | bfloat16 | float16 (default: preset's)"},
        {"layers", OPT_INT, &layers, "N", "number of layers (default: preset's)"},
        {"list", OPT_FLAG, &list, NULL, "list the presets"},
        {"no-tokenizer", OPT_FLAG, &no_tok, NULL, "do not write a tokenizer (tiny presets)"},
        {0},
    };
    cli_spec spec = {"mkmodel", "--preset NAME --out DIR [--seed N] [--pattern P]",
                     "Writes config.json, generation_config.json and model.safetensors (and, for\n"
                     "tiny presets, a small byte-level BPE tokenizer with a chat template) in the\n"
                     "on-disk layout of the released hybrid models, with random weights.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (list) {
        for (int i = 0; cl_preset_at(i); i++) {
            const cl_preset *p = cl_preset_at(i);
            printf("%-10s %-4s hidden %5lld  layers %3lld  heads %3lld/%lld  vocab %6lld  %s\n",
                   p->name, p->ssm, (long long)p->hidden, (long long)p->layers,
                   (long long)p->heads, (long long)p->kv_heads, (long long)p->vocab,
                   p->dtype == 0 ? "f32" : "bf16");
        }
        return 0;
    }
    if (!preset || !out)
        return cli_usage_error("mkmodel", "--preset and --out are required");
    cl_mkmodel_opts o = {preset, out, (uint64_t)seed, pattern, dtype, layers, no_tok};
    rc = cl_mkmodel(&o);
    if (rc != CL_OK)
        return cli_fail(rc);
    fprintf(stderr, "collage: wrote %s (preset %s, seed %lld)\n", out, preset, (long long)seed);
    return 0;
}
