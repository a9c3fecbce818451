/* jinja_filters.h - filter ids shared by the two filter files. */
#ifndef CL_JINJA_FILTERS_H
#define CL_JINJA_FILTERS_H

#include "template/jinja_int.h"

enum {
    JFL_ABS, JFL_ATTR, JFL_CAPITALIZE, JFL_DEFAULT, JFL_DICTSORT, JFL_ESCAPE, JFL_FIRST,
    JFL_FLOAT, JFL_INDENT, JFL_INT, JFL_ITEMS, JFL_JOIN, JFL_LAST, JFL_LENGTH, JFL_LIST,
    JFL_LOWER, JFL_MAP, JFL_MAX, JFL_MIN, JFL_REJECT, JFL_REJECTATTR, JFL_REPLACE, JFL_REVERSE,
    JFL_ROUND, JFL_SAFE, JFL_SELECT, JFL_SELECTATTR, JFL_SORT, JFL_STRING, JFL_SUM, JFL_TITLE,
    JFL_TOJSON, JFL_TRIM, JFL_UNIQUE, JFL_UPPER, JFL_WORDCOUNT,
};

const char *jfilter_name(int id);
/* Sequence filters: first, last, join, list, items, reverse, map, select, reject,
 * selectattr, rejectattr, sort, dictsort, unique, min, max, sum. */
int jfilter_seq(jctx *c, int line, int id, jv v, const jargs *a, jv *out);

#endif
