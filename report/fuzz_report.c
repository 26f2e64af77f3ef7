/* libFuzzer target over the trace reader, the analysis and both renderings (make fuzz). Any input
 * must give either a report or a clean error: never a crash, a hang or a sanitizer report. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report/out/output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("vsp-fuzz", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    struct vsp_analyze_opts o = {.fallback_window_ns = 5000000000ull};
    struct vsp_analysis a;
    if (vsp_analyze_file(path, &o, &a) == 0) {
        struct vsp_symbolizer *sym = vsp_sym_new(&a, "/nonexistent-sysroot", NULL);
        vsp_sym_merge_python(sym, &a);
        json_t *j = vsp_report_json(path, &a, sym);
        char *text = json_dumps(j, 0);
        free(text);
        json_decref(j);
        FILE *devnull = fopen("/dev/null", "w");
        vsp_report_text(devnull, path, &a, sym, 1);
        fclose(devnull);
        vsp_sym_free(sym);
    }
    vsp_analysis_free(&a);
    return 0;
}
