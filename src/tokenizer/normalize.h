/* normalize.h - UTF-8 validation and the NFC normalizer of the encode pipeline. */
#ifndef CL_TOKENIZER_NORMALIZE_H
#define CL_TOKENIZER_NORMALIZE_H

#include <stddef.h>

/* Offset of the first byte that does not start a well-formed UTF-8 character
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), or len if the
 * whole text is valid. */
size_t cl_utf8_invalid_at(const char *text, size_t len);

/* NFC of valid UTF-8 text, as utf8proc computes it but only on the pieces that
 * can change. If nothing changes, *out is text itself and *owned is 0; otherwise
 * *out is a malloc'd normalized copy (*owned = 1, free it). */
int cl_nfc(const char *text, size_t len, const char **out, size_t *out_len, int *owned);

#endif
