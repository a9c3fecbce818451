/* collage bench prefill - placeholder until its issue lands. */
#include <stdio.h>

#include "bench.h"

int bench_prefill(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'bench prefill' is not yet supported in this build\n");
    return 1;
}
