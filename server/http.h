/* http.h - the HTTP side: a libmicrohttpd daemon (epoll, a small thread pool, suspended
 * connections for everything that waits on the engine) on a socket bound here, request
 * routing, the API key, size limits and the queue limit, and the answers: whole JSON
 * bodies or Server-Sent Event streams read from the job as the engine fills it. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "srv.h"

/* Binds host:port (port 0: any free one; *bound_port receives it) and starts the
 * daemon (s->d). CL status; errors name the address. */
int http_start(srv *s, int *bound_port);
/* Stops the daemon (no connection may be suspended any more). */
void http_stop(srv *s);

#endif
