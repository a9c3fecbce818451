/* libFuzzer entry point for the tokenizer.json loader (see CMakeLists.txt here): the
 * input goes to a scratch file (the loader reads paths), then load, encode, decode. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "tokenizer/bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/collage-fuzz-%ld.json", dir ? dir : "/tmp", (long)getpid());
    }
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    cl_tokenizer *t;
    if (cl_tokenizer_load(path, &t) != 0)
        return 0;
    static const char text[] = "Hello, world! 123 <|im_end|> caf\xc3\xa9\n\t x";
    for (int special = 0; special < 2; special++) {
        cl_ids ids = {0};
        if (cl_tokenizer_encode(t, text, sizeof text - 1, special, &ids) == 0) {
            char *out;
            size_t n;
            if (cl_tokenizer_decode(t, ids.v, ids.n, &out, &n) == 0)
                free(out);
        }
        cl_ids_free(&ids);
    }
    cl_tokenizer_free(t);
    return 0;
}
