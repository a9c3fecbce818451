/* log.h - logging and progress on stderr (never stdout: stdout carries results).
 * Verbosity: COLLAGE_LOG=quiet|info|debug (default info). Progress lines are drawn
 * only when stderr is a terminal or COLLAGE_PROGRESS=1. */
#ifndef CL_LOG_H
#define CL_LOG_H

#include <stdint.h>

/* Levels are collage.h's CL_LOG_QUIET (0), CL_LOG_INFO (1), CL_LOG_DEBUG (2);
 * cl_log_set_level is declared there. */
int cl_log_level(void);
void cl_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cl_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cl_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress of long work: label, done, total (units: whatever the caller counts).
 * Rate-limited; call cl_progress_end() once finished to end the line. */
void cl_progress(const char *label, uint64_t done, uint64_t total);
void cl_progress_end(const char *label);

/* Monotonic time in seconds. */
double cl_now(void);

#endif
