/* ids.h - token id lists: parsing "1,2,3" or "@FILE" (ids separated by commas or
 * whitespace) and a growable int32 vector. */
#ifndef CL_IDS_H
#define CL_IDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *v;
    size_t n, cap;
} cl_ids;

int cl_ids_push(cl_ids *ids, int32_t id);
int cl_ids_append(cl_ids *ids, const int32_t *src, size_t n);
void cl_ids_free(cl_ids *ids);
/* Parses `text` (or the file it names after '@'). `what` names the flag in errors.
 * Empty text gives an empty list. */
int cl_ids_parse(const char *text, const char *what, cl_ids *out);

#endif
