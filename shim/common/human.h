/* Byte counts for people ("4.0 MiB", "512 B"): one spelling for the shim's stderr (the
 * out-of-memory breakdown, the exit summary) and the report's text. */
#ifndef VSP_HUMAN_H
#define VSP_HUMAN_H

#include <stdint.h>
#include <stdio.h>

static inline void vsp_human_bytes(char *buf, size_t len, uint64_t b)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024.0 && i < 4) {
        v /= 1024.0;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, len, "%.1f %s", v, u[i]);
}

#endif
