#include "common/log.h"

#include "collage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = -1;
static double last_progress;
static int progress_on = -1;

static void init_level(void)
{
    if (log_level >= 0)
        return;
    const char *e = getenv("COLLAGE_LOG");
    log_level = CL_LOG_WARN;
    if (e && !strcmp(e, "quiet"))
        log_level = CL_LOG_QUIET;
    else if (e && !strcmp(e, "info"))
        log_level = CL_LOG_INFO;
    else if (e && !strcmp(e, "debug"))
        log_level = CL_LOG_DEBUG;
}

void cl_log_set_level(int level) { log_level = level; }

int cl_log_level(void)
{
    init_level();
    return log_level;
}

static void vlog(const char *tag, const char *fmt, va_list ap)
{
    fprintf(stderr, "collage: %s", tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cl_log_info(const char *fmt, ...)
{
    if (cl_log_level() < CL_LOG_INFO)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void cl_log_debug(const char *fmt, ...)
{
    if (cl_log_level() < CL_LOG_DEBUG)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("debug: ", fmt, ap);
    va_end(ap);
}

void cl_log_warn(const char *fmt, ...)
{
    if (cl_log_level() < CL_LOG_WARN)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

double cl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* COLLAGE_PROGRESS=1 / 0 decides; without it, progress is drawn on a terminal unless
 * the log is quiet. */
static int progress_enabled(void)
{
    if (progress_on < 0) {
        const char *e = getenv("COLLAGE_PROGRESS");
        if (e && *e)
            progress_on = atoi(e) != 0 ? 1 : 0;
        else
            progress_on = isatty(2) ? 2 : 0;
    }
    return progress_on == 1 || (progress_on == 2 && cl_log_level() >= CL_LOG_WARN);
}

void cl_progress(const char *label, uint64_t done, uint64_t total)
{
    if (!progress_enabled())
        return;
    double t = cl_now();
    if (done < total && t - last_progress < 0.2)
        return;
    last_progress = t;
    if (total)
        fprintf(stderr, "\r%s: %llu/%llu (%.0f%%)", label, (unsigned long long)done,
                (unsigned long long)total, 100.0 * (double)done / (double)total);
    else
        fprintf(stderr, "\r%s: %llu", label, (unsigned long long)done);
    fflush(stderr);
}

void cl_progress_end(const char *label)
{
    (void)label;
    if (!progress_enabled())
        return;
    fputc('\n', stderr);
    last_progress = 0;
}
