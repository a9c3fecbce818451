/* log.h - logging and progress on stderr (never stdout: stdout carries results).
 * Verbosity: COLLAGE_LOG=quiet|warn|info|debug (default warn). Progress lines are
 * drawn only when stderr is a terminal or COLLAGE_PROGRESS=1. */
#ifndef CL_LOG_H
#define CL_LOG_H

#include <stdint.h>

#include "collage.h"

/* Levels are collage.h's CL_LOG_QUIET (0), CL_LOG_WARN (1, default), CL_LOG_INFO (2),
 * CL_LOG_DEBUG (3); cl_log_set_level is declared there. */
int cl_log_level(void);
void cl_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cl_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cl_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cl_progress / cl_progress_end (progress lines of long work) are public: collage.h. */

/* Monotonic time in seconds. */
double cl_now(void);

#endif
