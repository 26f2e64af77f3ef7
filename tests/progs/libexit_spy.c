/* Test library: a second interposer of _exit, preloaded after the shim. It says "spy _exit N" on
 * stderr and calls the next definition, as a tracer that flushes at _exit would: the shim's _exit
 * must not skip it (test_shim_lifecycle.c, the shim's direct exit). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void _exit(int status)
{
    char line[64];
    int n = snprintf(line, sizeof line, "spy _exit %d\n", status);
    if (write(2, line, (size_t)n) < 0) {
        /* nothing to do: the status below is what the test checks */
    }
    void (*next)(int) = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
    next(status);
    for (;;) {
    }
}
