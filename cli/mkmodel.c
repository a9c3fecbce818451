/* collage mkmodel - write a random-weight checkpoint from a preset. */
#include <stdio.h>

#include "args.h"
#include "collage.h"
#include "verbs.h"

int cmd_mkmodel(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL, *pattern = NULL, *dtype = NULL;
    int64_t seed = 0, layers = 0;
    int list = 0, no_tok = 0;
    cli_opt opts[] = {
        {"preset", OPT_STR, &preset, "NAME", "preset (see --list)", 0, 0},
        {"out", OPT_STR, &out, "DIR", "output directory (created)", 0, 0},
        {"seed", OPT_INT, &seed, "N", "random seed (default 0)", 0, 9.2e18},
        {"pattern", OPT_STR, &pattern, "P",
         "hybrid_override_pattern, e.g. '*-GKA' (repeated to the layer count)", 0, 0},
        {"dtype", OPT_STR, &dtype, "T", "float32 | bfloat16 | float16 (default: preset's)", 0, 0},
        {"layers", OPT_INT, &layers, "N", "number of layers (default: preset's)", 1, 1024},
        {"list", OPT_FLAG, &list, NULL, "list the presets", 0, 0},
        {"no-tokenizer", OPT_FLAG, &no_tok, NULL, "do not write a tokenizer (tiny presets)", 0,
         0},
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
        const char *name, *desc;
        for (int i = 0; (name = cl_mkmodel_preset(i, &desc)); i++)
            printf("%-10s %s\n", name, desc);
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
