/* bytelevel.h - the GPT-2 byte-to-unicode map used by byte-level BPE (HF "ByteLevel").
 *
 * Every byte maps to one printable character: bytes that are already printable
 * Latin-1 ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) map to themselves, the other
 * 68 bytes to U+0100.. in increasing byte order (space -> U+0120 'Ġ', '\n' -> U+010A
 * 'Ċ'). Vocabulary strings in tokenizer.json are written in this mapped form. The
 * map is pure arithmetic: no table to get wrong. */
#ifndef CL_TOKENIZER_BYTELEVEL_H
#define CL_TOKENIZER_BYTELEVEL_H

#include <stddef.h>
#include <stdint.h>

/* The code point byte b maps to (always < U+0144, so 1 or 2 UTF-8 bytes). */
uint32_t cl_bytelevel_char(uint8_t b);
/* The byte a code point stands for, or -1 if it is not one of the 256 map characters. */
int cl_bytelevel_byte(uint32_t cp);
/* Writes the mapped UTF-8 form of len raw bytes to out (room for 2*len bytes);
 * returns the number of bytes written. */
size_t cl_bytelevel_encode(const uint8_t *raw, size_t len, char *out);
/* Reverses the map: decodes the mapped UTF-8 string s into raw bytes (out has room
 * for len bytes). Returns the raw length, or -1 if s holds a character outside the
 * map (such a token is not a byte-level token). */
long cl_bytelevel_decode(const char *s, size_t len, uint8_t *out);

#endif
