/* collage bench compose - placeholder until its issue lands. */
#include <stdio.h>

#include "bench.h"

int bench_compose(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'bench compose' is not yet supported in this build\n");
    return 1;
}
