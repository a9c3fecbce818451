/* collage store - placeholder until its issue lands: answers "not yet supported". */
#include <stdio.h>

#include "verbs.h"

int cmd_store(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'store' is not yet supported in this build\n");
    return 1;
}
