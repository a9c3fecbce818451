/* collage compose - placeholder until its issue lands: answers "not yet supported". */
#include <stdio.h>

#include "verbs.h"

int cmd_compose(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: 'compose' is not yet supported in this build\n");
    return 1;
}
