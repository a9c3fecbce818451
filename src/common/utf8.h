/* utf8.h - UTF-8 validity: the length of the well-formed sequence at a position
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). Used wherever bytes
 * become JSON text (which must be valid UTF-8). */
#ifndef CL_UTF8_H
#define CL_UTF8_H

#include <stddef.h>

/* Bytes of the well-formed sequence starting at p (avail bytes readable), or 0. */
int cl_utf8_seq_len(const unsigned char *p, size_t avail);

#endif
