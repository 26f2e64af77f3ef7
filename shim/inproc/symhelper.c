/* libvramspy-sym.so: the shim's in-process symboliser, a separate library that the shim loads
 * (dlopen) only on first need — an out-of-memory breakdown, or VRAMSPY_PURPOSES rules — so a
 * process that never needs symbols never maps libdw. It reports this process's modules to
 * libdwfl from /proc/self/maps and expands addresses with shim/common/dwframe.c, exactly as the report
 * does offline. Modules loaded later (dlopen) are picked up: an address that no reported module
 * covers triggers one re-report when the loader's module list has changed since the last one, and
 * any unload (dlclose) since the last one does too.
 * Not thread-safe: the shim serialises calls (shim/inproc/oom.c). */
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim/common/dwframe.h"

static Dwfl *dwfl;
static Dwfl_Callbacks cb;
static char *debuginfo_path;
static unsigned long long reported_adds = ~0ull;

static int adds_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(unsigned long long *)data = info->dlpi_adds + (info->dlpi_subs << 32);
    return 1; /* the first entry carries the loader's counters */
}

static unsigned long long loader_generation(void)
{
    unsigned long long g = 0;
    dl_iterate_phdr(adds_cb, &g);
    return g;
}

static void report_modules(void)
{
    unsigned long long g = loader_generation();
    if (g == reported_adds)
        return;
    /* A fresh Dwfl each time the module list changed: re-reporting into a used one left stale
     * address ranges (an address of a later dlopen'd library was given to libstdc++). */
    if (dwfl)
        dwfl_end(dwfl);
    cb.find_elf = dwfl_linux_proc_find_elf;
    cb.find_debuginfo = dwfl_standard_find_debuginfo;
    cb.debuginfo_path = &debuginfo_path;
    dwfl = dwfl_begin(&cb);
    if (!dwfl)
        return;
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
    if (rc == 0)
        reported_adds = g;
}

__attribute__((visibility("default"))) int vsp_symhelper_frames(uint64_t addr, struct vsp_frame_info *out, int max,
                                                                char *module, size_t mlen)
{
    memset(&out[0], 0, sizeof out[0]);
    out[0].address = addr;
    module[0] = 0;
    /* an unload (dlclose) may leave a stale module where a new one is now mapped: re-report */
    if (!dwfl || (loader_generation() >> 32) != (reported_adds >> 32))
        report_modules();
    Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, addr - 1) : NULL;
    if (!mod) {
        report_modules();
        mod = dwfl ? dwfl_addrmodule(dwfl, addr - 1) : NULL;
    }
    if (!mod)
        return 1;
    Dwarf_Addr start = 0;
    const char *name = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    snprintf(module, mlen, "%s", name ? name : "");
    out[0].module = module;
    out[0].offset = addr - start;
    return vsp_dw_frame(mod, addr, out, max);
}
