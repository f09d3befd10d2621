/* Active health checks (health_check = { interval = N; } in a route): every interval, a
 * non-blocking TCP or unix connect to each upstream server of the route, on the main thread's
 * driver, so a server that is down comes back without waiting for client traffic. */
#ifndef EVPROXYD_HEALTH_CHECK_H
#define EVPROXYD_HEALTH_CHECK_H

struct daemon;

/* Start checking the routes of d's current generation that ask for it. Main thread.
 * 0 or -ENOMEM (logged). */
int health_check_start(struct daemon *d);
/* Stop every check and let go of the generation. Accepts a daemon without checks. */
void health_check_stop(struct daemon *d);
/* After a reload: when d->gen is not the generation being checked, start over on it. Cheap
 * otherwise (a pointer compare), so it may run after every main-loop turn. */
void health_check_sync(struct daemon *d);

#endif
