/* Small helpers every layer of the daemon may use. */
#ifndef EVPROXYD_UTIL_H
#define EVPROXYD_UTIL_H

#include <stddef.h>

/* The struct of type that holds member at ptr (intrusive records: tasks, timers, list links). */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
