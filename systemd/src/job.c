/* Which job systemd runs on this service right now, asked over the system bus: on SIGTERM the
 * daemon needs to know whether it is being restarted (hand everything to the fd store, the
 * next process resumes it) or stopped (drain: systemd 252 discards the store on a stop). The
 * answer counts only when this process is the service's main process: a daemon started by
 * hand, or by a test under some other unit, gets -ESRCH, whatever job that unit has.
 *
 * Every call is asynchronous under one deadline for the whole question: sd-bus's own method
 * call timeout does not cover the connection's authentication, which a bus that accepts and
 * never answers stretches to 90 s. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <evproxy/sd.h>

#define DEST        "org.freedesktop.systemd1"
#define DEADLINE_US 2000000 /* the whole question: a silent bus must not hold up the stop */

struct call {
        sd_bus_message *reply; /* referenced on success */
        int r;                 /* 1 while waiting, then 0 or -errno */
        char error[128];       /* the D-Bus error's name, if any */
};

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        struct call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        (void)ret_error;
        if (e) {
                snprintf(c->error, sizeof(c->error), "%s", e->name ? e->name : "");
                c->r = -sd_bus_error_get_errno(e);
                if (c->r == 0)
                        c->r = -EIO;
        } else {
                c->reply = sd_bus_message_ref(m);
                c->r = 0;
        }
        return 1;
}

/* One method call; *reply set on success. */
static int call(sd_bus *bus, uint64_t deadline, struct call *c, const char *path, const char *iface,
                const char *member, const char *sig, ...)
{
        sd_bus_message *m = NULL;
        sd_bus_slot *slot = NULL;
        va_list ap;
        int r;

        *c = (struct call){.r = 1};
        r = sd_bus_message_new_method_call(bus, &m, DEST, path, iface, member);
        if (r >= 0 && sig) {
                va_start(ap, sig);
                r = sd_bus_message_appendv(m, sig, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call_async(bus, &slot, m, on_reply, c, DEADLINE_US);
        sd_bus_message_unref(m);
        while (r >= 0 && c->r == 1) {
                uint64_t t = now_us();

                r = sd_bus_process(bus, NULL);
                if (r > 0 || r < 0)
                        continue;
                r = t >= deadline ? -ETIMEDOUT : sd_bus_wait(bus, deadline - t);
        }
        sd_bus_slot_unref(slot);
        if (r < 0) {
                sd_bus_message_unref(c->reply);
                c->reply = NULL;
                return r;
        }
        return c->r;
}

static int get_prop(sd_bus *bus, uint64_t deadline, struct call *c, const char *path,
                    const char *iface, const char *prop, const char *type)
{
        int r = call(bus, deadline, c, path, "org.freedesktop.DBus.Properties", "Get", "ss", iface,
                     prop);

        if (r >= 0)
                r = sd_bus_message_enter_container(c->reply, 'v', type);
        return r;
}

static int ask(sd_bus *bus, uint64_t deadline, char *type, size_t size)
{
        struct call c;
        const char *s;
        char *unit = NULL;
        uint32_t pid = 0, id = 0;
        int r;

        r = call(bus, deadline, &c, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                 "GetUnitByPID", "u", (uint32_t)getpid());
        if (r >= 0)
                r = sd_bus_message_read(c.reply, "o", &s);
        if (r >= 0)
                unit = strdup(s);
        c.reply = sd_bus_message_unref(c.reply);
        if (!unit)
                return r < 0 ? r : -ENOMEM;

        /* Our unit's main process? (A scope has no Service interface: not a service.) */
        r = get_prop(bus, deadline, &c, unit, "org.freedesktop.systemd1.Service", "MainPID", "u");
        if (r >= 0)
                r = sd_bus_message_read(c.reply, "u", &pid);
        c.reply = sd_bus_message_unref(c.reply); /* NULL: unref'd once whatever follows */
        if (r < 0 && strcmp(c.error, SD_BUS_ERROR_UNKNOWN_PROPERTY) == 0)
                r = -ESRCH;
        if (r >= 0 && pid != (uint32_t)getpid())
                r = -ESRCH;

        if (r >= 0)
                r = get_prop(bus, deadline, &c, unit, "org.freedesktop.systemd1.Unit", "Job",
                             "(uo)");
        free(unit);
        if (r >= 0)
                r = sd_bus_message_read(c.reply, "(uo)", &id, &s);
        if (r < 0 || id == 0 || strcmp(s, "/") == 0) {
                sd_bus_message_unref(c.reply);
                return r < 0 ? r : 0;
        }
        char *job = strdup(s);
        sd_bus_message_unref(c.reply);
        if (!job)
                return -ENOMEM;
        r = get_prop(bus, deadline, &c, job, "org.freedesktop.systemd1.Job", "JobType", "s");
        free(job);
        if (r >= 0 && (r = sd_bus_message_read(c.reply, "s", &s)) >= 0) {
                snprintf(type, size, "%s", s);
                r = 1;
        } else if (strcmp(c.error, SD_BUS_ERROR_UNKNOWN_OBJECT) == 0 ||
                   strcmp(c.error, "org.freedesktop.systemd1.NoSuchJob") == 0)
                r = 0; /* the job finished between the two calls */
        sd_bus_message_unref(c.reply);
        return r;
}

int evsd_unit_job(char *type, size_t size)
{
        uint64_t deadline = now_us() + DEADLINE_US;
        sd_bus *bus = NULL;
        int r;

        if (size)
                type[0] = '\0';
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = ask(bus, deadline, type, size);
        sd_bus_close_unref(bus); /* no flush: it would wait out a silent bus's 90 s */
        return r;
}
