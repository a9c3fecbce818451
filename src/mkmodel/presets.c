#include "mkmodel/presets.h"

#include <stdio.h>
#include <string.h>

#include "collage.h"

/* Tiny models: hidden 128, 4 query / 2 KV heads of 32, 4 layers, vocab 512 (a
 * byte-level BPE trained by mkmodel). Small: ~100M parameters for CPU benchmarks.
 * 8B/32B: Qwen3-8B / Qwen3-32B dimensions (spec/MODEL.md §1.2), bf16. */
static const cl_preset presets[] = {
    {"tiny-gka", "GKA", 128, 384, 4, 4, 2, 32, 512, CL_F32, 0, 1, 5e6, 4096},
    {"tiny-gdn", "GDN", 128, 384, 4, 4, 2, 32, 512, CL_F32, 0, 1, 5e6, 4096},
    {"tiny-m2", "M2", 128, 384, 4, 4, 2, 32, 512, CL_F32, 0, 1, 5e6, 4096},
    {"tiny-swa", "SWA", 128, 384, 4, 4, 2, 32, 512, CL_F32, 32, 1, 5e6, 4096},
    {"tiny-attn", "*", 128, 384, 4, 4, 2, 32, 512, CL_F32, 0, 1, 5e6, 4096},
    {"small-gka", "GKA", 768, 2048, 12, 12, 4, 64, 8192, CL_F32, 0, 1, 5e6, 32768},
    {"small-gdn", "GDN", 768, 2048, 12, 12, 4, 64, 8192, CL_F32, 0, 1, 5e6, 32768},
    {"small-m2", "M2", 768, 2048, 12, 12, 4, 64, 8192, CL_F32, 0, 1, 5e6, 32768},
    {"gka-8b", "GKA", 4096, 12288, 36, 32, 8, 128, 151936, CL_BF16, 0, 0, 5e6, 131072},
    {"gdn-8b", "GDN", 4096, 12288, 36, 32, 8, 128, 151936, CL_BF16, 0, 0, 5e6, 131072},
    {"m2-8b", "M2", 4096, 12288, 36, 32, 8, 128, 151936, CL_BF16, 0, 0, 5e6, 131072},
    {"gka-32b", "GKA", 5120, 25600, 64, 64, 8, 128, 151936, CL_BF16, 0, 0, 5e6, 131072},
    {"gdn-32b", "GDN", 5120, 25600, 64, 64, 8, 128, 151936, CL_BF16, 0, 0, 5e6, 131072},
};

const cl_preset *cl_preset_find(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
}

const cl_preset *cl_preset_at(int i)
{
    if (i < 0 || (size_t)i >= sizeof presets / sizeof presets[0])
        return 0;
    return &presets[i];
}

const char *cl_mkmodel_preset(int i, const char **description)
{
    const cl_preset *p = cl_preset_at(i);
    if (!p)
        return NULL;
    if (description) {
        static _Thread_local char buf[160];
        snprintf(buf, sizeof buf, "%-4s hidden %5lld  layers %3lld  heads %3lld/%lld  vocab %6lld  %s",
                 p->ssm, (long long)p->hidden, (long long)p->layers, (long long)p->heads,
                 (long long)p->kv_heads, (long long)p->vocab, p->dtype == CL_F32 ? "f32" : "bf16");
        *description = buf;
    }
    return p->name;
}
