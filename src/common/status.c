#include "common/status.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[1024];

/* Messages are one line: control characters that came with names or values from
 * a file (a key holding "\n") are shown as '?'. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = *s == '\t' ? ' ' : '?';
}

int cl_verr(int status, const char *fmt, va_list ap)
{
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    one_line(errbuf);
    return status;
}

int cl_err(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cl_verr(status, fmt, ap);
    va_end(ap);
    return status;
}

int cl_err_prefix(int status, const char *fmt, ...)
{
    char prefix[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof errbuf - 3)
        n = sizeof errbuf - 3;
    memcpy(errbuf, prefix, n);
    errbuf[n] = ':';
    errbuf[n + 1] = ' ';
    size_t rest = sizeof errbuf - n - 3;
    size_t m = strlen(old);
    if (m > rest)
        m = rest;
    memcpy(errbuf + n + 2, old, m);
    errbuf[n + 2 + m] = 0;
    one_line(errbuf);
    return status;
}

const char *cl_errmsg(void) { return errbuf; }

void cl_err_clear(void) { errbuf[0] = 0; }

const char *cl_status_name(int status)
{
    switch (status) {
    case CL_OK: return "ok";
    case CL_ERR_ARG: return "bad argument";
    case CL_ERR_IO: return "i/o error";
    case CL_ERR_FORMAT: return "malformed input";
    case CL_ERR_UNSUPPORTED: return "not yet supported";
    case CL_ERR_NOMEM: return "out of memory";
    case CL_ERR_RANGE: return "out of range";
    case CL_ERR_CORRUPT: return "corrupted data";
    case CL_ERR_FULL: return "no space left";
    case CL_ERR_NOTFOUND: return "not found";
    case CL_ERR_BACKEND: return "backend error";
    default: return "internal error";
    }
}
