/* status.h - error codes and the thread-local error message.
 *
 * Every function that can fail returns an int status (CL_OK = 0). On failure it
 * also records a one-line message naming the file/key/value at fault, which
 * cl_errmsg() returns until the next failure on this thread. No function below
 * cli/ prints errors or exits; the CLI prints "collage: <message>".
 */
#ifndef CL_STATUS_H
#define CL_STATUS_H

#include <stdarg.h>

enum {
    CL_OK = 0,
    CL_ERR_ARG = 1,         /* bad argument (usage) */
    CL_ERR_IO = 2,          /* file could not be read / written */
    CL_ERR_FORMAT = 3,      /* malformed file content */
    CL_ERR_UNSUPPORTED = 4, /* valid input asking for something not implemented */
    CL_ERR_NOMEM = 5,       /* allocation failed */
    CL_ERR_RANGE = 6,       /* value out of range (token id, context length) */
    CL_ERR_CORRUPT = 7,     /* stored data failed its checksum */
    CL_ERR_FULL = 8,        /* store or disk full */
    CL_ERR_NOTFOUND = 9,    /* key / entry not present */
    CL_ERR_BACKEND = 10,    /* device / backend failure */
    CL_ERR_INTERNAL = 11,
};

/* Records a formatted message and returns `status` (so: return cl_err(...)). */
int cl_err(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cl_verr(int status, const char *fmt, va_list ap);
/* Prepends "<prefix>: " to the current message; returns `status`. */
int cl_err_prefix(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message recorded on this thread ("" if none). */
const char *cl_errmsg(void);
void cl_err_clear(void);
/* A short name for a status code ("io error", ...). */
const char *cl_status_name(int status);

#define CL_TRY(expr)                  \
    do {                              \
        int cl_try_rc_ = (expr);      \
        if (cl_try_rc_ != CL_OK)      \
            return cl_try_rc_;        \
    } while (0)

#endif
