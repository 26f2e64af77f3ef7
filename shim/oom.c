/* The out-of-memory breakdown: when a device allocation fails, write on stderr at once what holds
 * device memory — the top call sites by live bytes, the largest live allocations — and whether
 * the failure looks like fragmentation (free >= requested) or exhaustion. Symbols are resolved in
 * the process only then, by loading elfutils' libdw on first need (dlopen), so a process that never
 * fails pays nothing. This is a failure path: it may allocate and call libdw; it never runs while
 * a hook of this thread is recording anything else.
 * Must never: print on stdout, or crash the host when libdw is missing (addresses are printed). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "atomic.h"
#include "core.h"

/* ---- libdw, loaded on first need ---- */

typedef struct Dwfl Dwfl;
typedef struct Dwfl_Module Dwfl_Module;
typedef struct Dwfl_Line Dwfl_Line;
typedef struct {
    void *find_elf, *find_debuginfo, *section_address;
    char **debuginfo_path;
} Dwfl_Callbacks_;

static struct {
    int tried;
    Dwfl *dwfl;
    Dwfl_Callbacks_ cb;
    char *path;
    Dwfl_Module *(*addrmodule)(Dwfl *, uint64_t);
    const char *(*addrname)(Dwfl_Module *, uint64_t);
    Dwfl_Line *(*getsrc)(Dwfl_Module *, uint64_t);
    const char *(*lineinfo)(Dwfl_Line *, uint64_t *, int *, int *, void *, void *);
} dw;

static void dw_load(void)
{
    if (dw.tried)
        return;
    dw.tried = 1;
    void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    Dwfl *(*begin)(const Dwfl_Callbacks_ *) = (Dwfl *(*)(const Dwfl_Callbacks_ *))vsp_real_dlsym(h, "dwfl_begin");
    int (*proc_report)(Dwfl *, pid_t) = (int (*)(Dwfl *, pid_t))vsp_real_dlsym(h, "dwfl_linux_proc_report");
    int (*report_end)(Dwfl *, void *, void *) = (int (*)(Dwfl *, void *, void *))vsp_real_dlsym(h, "dwfl_report_end");
    dw.cb.find_elf = vsp_real_dlsym(h, "dwfl_linux_proc_find_elf");
    dw.cb.find_debuginfo = vsp_real_dlsym(h, "dwfl_standard_find_debuginfo");
    dw.addrmodule = (Dwfl_Module * (*)(Dwfl *, uint64_t)) vsp_real_dlsym(h, "dwfl_addrmodule");
    dw.addrname = (const char *(*)(Dwfl_Module *, uint64_t))vsp_real_dlsym(h, "dwfl_module_addrname");
    dw.getsrc = (Dwfl_Line * (*)(Dwfl_Module *, uint64_t)) vsp_real_dlsym(h, "dwfl_module_getsrc");
    dw.lineinfo = (const char *(*)(Dwfl_Line *, uint64_t *, int *, int *, void *, void *))vsp_real_dlsym(h, "dwfl_lineinfo");
    if (!begin || !proc_report || !report_end || !dw.cb.find_elf || !dw.cb.find_debuginfo || !dw.addrmodule ||
        !dw.addrname)
        return;
    dw.cb.debuginfo_path = &dw.path;
    dw.dwfl = begin(&dw.cb);
    if (dw.dwfl && (proc_report(dw.dwfl, getpid()) != 0 || report_end(dw.dwfl, NULL, NULL) != 0))
        dw.dwfl = NULL;
}

int vsp_inproc_symbol(uint64_t pc, char *func, size_t flen, char *module, size_t mlen)
{
    dw_load();
    Dwfl_Module *m = dw.dwfl ? dw.addrmodule(dw.dwfl, pc) : NULL;
    const char *name = m ? dw.addrname(m, pc) : NULL;
    Dl_info di;
    int have = dladdr((void *)(uintptr_t)pc, &di);
    if (!name && have)
        name = di.dli_sname;
    snprintf(func, flen, "%s", name ? name : "");
    snprintf(module, mlen, "%s", have && di.dli_fname ? di.dli_fname : "");
    return name || (have && di.dli_fname) ? 0 : -1;
}

static void describe(uint64_t addr, char *buf, size_t len)
{
    if (!addr) {
        snprintf(buf, len, "(no stack)");
        return;
    }
    dw_load();
    uint64_t pc = addr - 1;
    Dwfl_Module *m = dw.dwfl ? dw.addrmodule(dw.dwfl, pc) : NULL;
    const char *name = m ? dw.addrname(m, pc) : NULL;
    Dwfl_Line *l = m && dw.getsrc ? dw.getsrc(m, pc) : NULL;
    int line = 0;
    const char *file = l && dw.lineinfo ? dw.lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
    const char *base = file ? strrchr(file, '/') : NULL;
    if (name && file)
        snprintf(buf, len, "%s (%s:%d)", name, base ? base + 1 : file, line);
    else if (name)
        snprintf(buf, len, "%s", name);
    else {
        Dl_info di;
        if (dladdr((void *)(uintptr_t)pc, &di) && di.dli_fname)
            snprintf(buf, len, "%s+0x%" PRIx64, di.dli_fname, (uint64_t)(pc + 1 - (uintptr_t)di.dli_fbase));
        else
            snprintf(buf, len, "0x%" PRIx64, addr);
    }
}

static void human(char *buf, size_t len, uint64_t b)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024.0 && i < 4) {
        v /= 1024.0;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* ---- aggregation over the live table ---- */

#define AGG 4096
#define TOP 8
struct agg { uint32_t stack_id; uint32_t count; uint64_t bytes; };
struct big { uint64_t size, addr; uint32_t stack_id; };

void vsp_oom_breakdown(const struct vsp_call *c, uint64_t free_b, uint64_t total_b, int have_info)
{
    static struct agg *table; /* one scratch table, allocated on the first failure */
    static int busy;
    int expected = 0;
    /* one breakdown at a time: a second thread failing meanwhile just records its event */
    if (!vsp_cas_acq_rel(&busy, &expected, 1))
        return;
    if (!table) {
        void *p = mmap(NULL, AGG * sizeof *table, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        table = p == MAP_FAILED ? NULL : p;
    }
    char req[32], fr[32], tot[32], live[32];
    human(req, sizeof req, c->size);
    if (have_info) {
        human(fr, sizeof fr, free_b);
        human(tot, sizeof tot, total_b);
        vsp_warn("out of memory: %s of %s failed; device free %s of %s: %s", vsp_api_name(c->api), req, fr, tot,
                 free_b >= c->size ? "looks like FRAGMENTATION (enough is free, but not in one piece)"
                                   : "EXHAUSTION (less is free than was asked)");
    } else {
        vsp_warn("out of memory: %s of %s failed (device free memory unknown)", vsp_api_name(c->api), req);
    }
    struct big big[TOP];
    memset(big, 0, sizeof big);
    uint64_t total_live = 0, nlive = 0;
    if (table)
        memset(table, 0, AGG * sizeof *table);
    const struct vsp_livetable *t = &vsp_live;
    for (uint64_t i = 0; t->slots && i <= t->mask; i++) {
        const struct vsp_live_slot *s = &t->slots[i];
        /* acquire: pairs with the release that published the slot's fields */
        uint64_t key = vsp_load_acquire(&s->key);
        if (key <= 2 || !vsp_memory_is_device(s->memory))
            continue;
        uint64_t size = s->size;
        total_live += size;
        nlive++;
        if (table) {
            for (uint32_t h = (s->stack_id * 2654435761u) & (AGG - 1), probe = 0; probe < AGG;
                 probe++, h = (h + 1) & (AGG - 1)) {
                if (table[h].count == 0 || table[h].stack_id == s->stack_id) {
                    table[h].stack_id = s->stack_id;
                    table[h].count++;
                    table[h].bytes += size;
                    break;
                }
            }
        }
        for (int k = 0; k < TOP; k++) {
            if (size > big[k].size) {
                memmove(&big[k + 1], &big[k], (TOP - 1 - (size_t)k) * sizeof big[0]);
                big[k] = (struct big){size, key & ((1ull << 56) - 1), s->stack_id};
                break;
            }
        }
    }
    human(live, sizeof live, total_live);
    vsp_warn("live device memory: %s in %" PRIu64 " allocations", live, nlive);
    /* by purpose label, when the program or VRAMSPY_PURPOSES labels allocations */
    static uint64_t by_label[1024];
    memset(by_label, 0, sizeof by_label);
    int any_label = 0;
    for (uint64_t i = 0; t->slots && i <= t->mask; i++) {
        const struct vsp_live_slot *s = &t->slots[i];
        uint64_t key = vsp_load_acquire(&s->key);
        if (key <= 2 || !vsp_memory_is_device(s->memory))
            continue;
        by_label[s->label < 1024 ? s->label : 0] += s->size;
        any_label |= s->label != 0;
    }
    if (any_label) {
        vsp_warn("by purpose:");
        char lb[32];
        for (int l = 1; l < 1024; l++)
            if (by_label[l]) {
                human(lb, sizeof lb, by_label[l]);
                vsp_warn("  %10s  %s", lb, vsp_label_name((uint16_t)l) ? vsp_label_name((uint16_t)l) : "?");
            }
        if (by_label[0]) {
            human(lb, sizeof lb, by_label[0]);
            vsp_warn("  %10s  (unlabelled)", lb);
        }
    }
    vsp_warn("top call sites:");
    char where[600], b[32];
    for (int shown = 0; table && shown < TOP; shown++) {
        int best = -1;
        for (int h = 0; h < AGG; h++)
            if (table[h].count && (best < 0 || table[h].bytes > table[best].bytes))
                best = h;
        if (best < 0)
            break;
        human(b, sizeof b, table[best].bytes);
        describe(vsp_stack_site(table[best].stack_id), where, sizeof where);
        vsp_warn("  %10s in %u allocation%s  %s", b, table[best].count, table[best].count == 1 ? "" : "s", where);
        table[best].count = 0;
    }
    vsp_warn("largest live allocations:");
    for (int k = 0; k < TOP && big[k].size; k++) {
        human(b, sizeof b, big[k].size);
        describe(vsp_stack_site(big[k].stack_id), where, sizeof where);
        vsp_warn("  %10s at 0x%" PRIx64 "  %s", b, big[k].addr, where);
    }
    vsp_store_release(&busy, 0);
}
