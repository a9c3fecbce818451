/* libFuzzer entry point for the config.json parser (see CMakeLists.txt here). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    cl_config cfg;
    if (cl_config_parse("fuzz", text, &cfg) == 0)
        cl_config_free(&cfg);
    free(text);
    return 0;
}
