/* evproxyctl's pieces: the command line and the socket (evproxyctl.c), and the human-readable
 * rendering of the daemon's JSON answers (ctl_print.c). */
#ifndef EVPROXYCTL_CTL_H
#define EVPROXYCTL_CTL_H

#include <stdio.h>

#include <jansson.h>

#include "admin_proto.h"

/* Print the answer resp (with "ok": true) to req in words and tables. */
void ctl_print(FILE *out, const struct admin_request *req, json_t *resp);

#endif
