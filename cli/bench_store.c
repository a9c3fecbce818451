/* collage bench store - placeholder until its issue lands. */
#include <stdio.h>

#include "bench.h"

int bench_store(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'bench store' is not yet supported in this build\n");
    return 1;
}
