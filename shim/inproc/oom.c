/* The out-of-memory breakdown: when a device allocation fails, write on stderr at once what holds
 * device memory — by purpose, the top call sites by live bytes, the largest live allocations —
 * where the failing call came from, and whether the failure looks like fragmentation
 * (free >= requested) or exhaustion. Symbols are resolved in the process only then, by loading
 * the in-process symboliser libvramspy-sym.so (libdw, shim/inproc/symhelper.c) on first need, so a
 * process that never fails never maps libdw. The same symboliser names the frames that
 * VRAMSPY_PURPOSES rules match (shim/inproc/labels.c). This is a failure path: it may allocate and call
 * libdw; it never runs while a hook of this thread is recording anything else.
 * Must never: print on stdout, or crash the host when the symboliser is missing (dladdr names,
 * else module+offset, are printed). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/inproc/inproc.h"
#include "shim/walk/unwind.h"
#include "shim/common/frameinfo.h"
#include "shim/common/human.h"

/* ---- the in-process symboliser, loaded on first need ---- */

static vsp_symhelper_fn symhelper;
static int sym_tried;
static int sym_busy; /* spin flag: libdwfl is not thread-safe */

/* Why the symboliser beside the shim could not be loaded (dlerror's text), kept past the second
 * dlopen, which overwrites dlerror's. Cold path: a buffer of its own, not the hook's stack. */
static char sym_why[512];

static void sym_load(void)
{
    if (sym_tried)
        return;
    sym_tried = 1;
    /* beside the shim (build/ or $PREFIX/lib), else wherever the loader finds it */
    Dl_info self;
    static char path[VSP_PATH_MAX];
    void *h = NULL;
    int beside = 0; /* the file is there: a failure to load it is its dependencies' (libdw, libelf) */
    if (dladdr((void *)&sym_load, &self) && self.dli_fname) {
        const char *slash = strrchr(self.dli_fname, '/');
        if (slash && (size_t)(slash - self.dli_fname) + sizeof "/libvramspy-sym.so" < sizeof path) {
            snprintf(path, sizeof path, "%.*s/libvramspy-sym.so", (int)(slash - self.dli_fname), self.dli_fname);
            h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (!h && access(path, F_OK) == 0) {
                const char *err = dlerror();
                beside = 1;
                snprintf(sym_why, sizeof sym_why, "%s", err ? err : "unknown error");
            }
        }
    }
    if (!h && !beside)
        h = dlopen("libvramspy-sym.so", RTLD_NOW | RTLD_LOCAL);
    vsp_resolve_dlsym();
    if (h && vsp_real_dlsym)
        symhelper = (vsp_symhelper_fn)vsp_real_dlsym(h, VSP_SYMHELPER_ENTRY);
    if (symhelper)
        return;
    if (beside)
        /* issue 23: on a machine without elfutils the file was there and libdw.so.1 was not; glibc's
         * text names the missing library first ("libdw.so.1: cannot open shared object file...") */
        vsp_warn("libvramspy-sym.so (the in-process symboliser) is beside the shim (%s) but could not be "
                 "loaded: %s; it needs libdw.so.1 and libelf.so.1 from elfutils (Debian/Ubuntu: apt-get "
                 "install libdw1 libelf1; Fedora/RHEL: dnf install elfutils-libs): function names from the "
                 "dynamic symbol table only", path, sym_why);
    else
        vsp_warn("libvramspy-sym.so (the in-process symboliser) not found beside the shim: "
                 "function names from the dynamic symbol table only");
}

int vsp_inproc_preload(void)
{
    vsp_spin_lock(&sym_busy); /* the loader runs once, under the flag */
    sym_load();
    vsp_spin_unlock(&sym_busy);
    return symhelper ? 0 : -1;
}

int vsp_inproc_frames(uint64_t addr, struct vsp_frame_info *out, int max, char *module, size_t mlen)
{
    vsp_spin_lock(&sym_busy); /* libdwfl's state is seen whole by the next caller */
    /* In a sandbox installed after the first CUDA call, loading the symboliser or letting libdwfl
     * read a module's file could be fatal (SIGSYS): the dynamic symbol table only. */
    int sandboxed = vsp_sandboxed();
    if (!sandboxed)
        sym_load();
    int n;
    if (symhelper && !sandboxed) {
        n = symhelper(addr, out, max, module, mlen);
    } else {
        memset(&out[0], 0, sizeof out[0]);
        out[0].address = addr;
        Dl_info di;
        module[0] = 0;
        if (dladdr((void *)(uintptr_t)(addr - 1), &di)) {
            snprintf(out[0].function, sizeof out[0].function, "%s", di.dli_sname ? di.dli_sname : "");
            snprintf(module, mlen, "%s", di.dli_fname ? di.dli_fname : "");
            out[0].module = module;
            out[0].offset = addr - (uint64_t)(uintptr_t)di.dli_fbase;
        }
        n = 1;
    }
    vsp_spin_unlock(&sym_busy);
    return n;
}

/* Out-of-memory failures reported on stderr by this process (see vsp_oom_breakdown). */
static unsigned long oom_reports;

void vsp_inproc_atfork_child(void)
{
    sym_busy = 0; /* the child has one thread; fork waited for symbolisation brackets */
    oom_reports = 0; /* the child's own failures get their own breakdowns */
}

/* "function (file:line)" of a stack's innermost frame, the innermost inlined function first. */
static void describe(uint64_t addr, char *buf, size_t len)
{
    if (!addr) {
        snprintf(buf, len, "(no stack)");
        return;
    }
    struct vsp_frame_info fi[4];
    char module[VSP_PATH_MAX];
    vsp_inproc_frames(addr, fi, 4, module, sizeof module);
    const char *base = module[0] ? strrchr(module, '/') : NULL;
    if (fi[0].function[0] && fi[0].file[0])
        snprintf(buf, len, "%.400s (%.150s:%d)", fi[0].function, fi[0].file, fi[0].line); /* a line's worth */
    else if (fi[0].function[0])
        snprintf(buf, len, "%s", fi[0].function);
    else if (module[0])
        snprintf(buf, len, "%.400s+0x%" PRIx64, base ? base + 1 : module, fi[0].offset);
    else
        snprintf(buf, len, "0x%" PRIx64, addr);
}

/* ---- aggregation over the live table ---- */

#define AGG 4096
#define TOP 8
struct agg { uint64_t site; uint32_t count; uint64_t bytes; }; /* by call site: stacks that differ further out merge */
struct big { uint64_t size, addr; uint32_t stack_id; };

/* How much is said about one failure: the first VSP_OOM_FULL failures of a process get the whole
 * breakdown, the next ones one line each, and after VSP_OOM_LINES one line says that further ones
 * are not reported (the exit summary still counts every failed call). A program that retries a
 * failing allocation in a loop must not bury its own output. */
#define VSP_OOM_FULL 3
#define VSP_OOM_LINES 20

static void headline(const struct vsp_call *c, uint64_t free_b, uint64_t total_b, int have_info, const char *tail)
{
    char req[32], fr[32], tot[32];
    vsp_human_bytes(req, sizeof req, c->size);
    if (have_info) {
        vsp_human_bytes(fr, sizeof fr, free_b);
        vsp_human_bytes(tot, sizeof tot, total_b);
        vsp_warn("out of memory: %s of %s failed; device free %s of %s: %s%s", vsp_api_name(c->api), req, fr, tot,
                 free_b >= c->size ? "looks like FRAGMENTATION (enough is free, but not in one piece)"
                                   : "EXHAUSTION (less is free than was asked)",
                 tail);
    } else {
        vsp_warn("out of memory: %s of %s failed (device free memory unknown)%s", vsp_api_name(c->api), req, tail);
    }
}

struct oom_args {
    const struct vsp_call *c;
    uint32_t stack_id;
    uint64_t free_b, total_b;
    int have_info;
};
static void oom_breakdown_cold(const struct vsp_call *c, uint32_t stack_id, uint64_t free_b, uint64_t total_b,
                               int have_info);

static void oom_cold(void *p)
{
    struct oom_args *a = p;
    oom_breakdown_cold(a->c, a->stack_id, a->free_b, a->total_b, a->have_info);
}

void vsp_oom_breakdown(const struct vsp_call *c, uint32_t stack_id, uint64_t free_b, uint64_t total_b,
                       int have_info)
{
    struct oom_args a = {c, stack_id, free_b, total_b, have_info};
    vsp_cold_call(oom_cold, &a); /* symbolisation and tables: off the hook's stack */
}

static void oom_breakdown_cold(const struct vsp_call *c, uint32_t stack_id, uint64_t free_b, uint64_t total_b,
                               int have_info)
{
    static struct agg *table; /* one scratch table, allocated on the first failure */
    static int busy;
    unsigned long n = vsp_fetch_add_relaxed(&oom_reports, 1) + 1; /* relaxed: a counter */
    if (n > VSP_OOM_LINES) {
        if (n == VSP_OOM_LINES + 1)
            vsp_warn(vsp_cfg.summary && !vsp_cfg.quiet
                         ? "further out-of-memory failures are not reported here; the exit summary counts them"
                         : "further out-of-memory failures are not reported here; the trace records every one");
        return;
    }
    if (n > VSP_OOM_FULL) {
        char tail[96];
        snprintf(tail, sizeof tail, " (failure %lu; breakdowns are shown for the first %d)", n, VSP_OOM_FULL);
        headline(c, free_b, total_b, have_info, tail);
        return;
    }
    /* one breakdown at a time: a second thread failing meanwhile gets the headline only */
    if (!vsp_spin_trylock(&busy)) {
        headline(c, free_b, total_b, have_info, "");
        return;
    }
    if (!table) {
        void *p = mmap(NULL, AGG * sizeof *table, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        table = p == MAP_FAILED ? NULL : p;
    }
    char live[32];
    headline(c, free_b, total_b, have_info, "");
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
            uint64_t site = vsp_stack_site(s->stack_id);
            for (uint32_t h = (uint32_t)((site * 0x9E3779B97F4A7C15ull) >> 52) & (AGG - 1), probe = 0; probe < AGG;
                 probe++, h = (h + 1) & (AGG - 1)) {
                if (table[h].count == 0 || table[h].site == site) {
                    table[h].site = site;
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
    vsp_human_bytes(live, sizeof live, total_live);
    vsp_warn("live device memory: %s in %" PRIu64 " allocation%s", live, nlive, nlive == 1 ? "" : "s");
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
        for (;;) { /* biggest first; each shown once (its bytes cleared) */
            int best = 0;
            for (int l = 1; l < 1024; l++)
                if (by_label[l] > by_label[best] || (!best && by_label[l]))
                    best = l;
            if (!best)
                break;
            vsp_human_bytes(lb, sizeof lb, by_label[best]);
            vsp_warn("  %10s  %s", lb, vsp_label_name((uint16_t)best) ? vsp_label_name((uint16_t)best) : "?");
            by_label[best] = 0;
        }
        if (by_label[0]) {
            vsp_human_bytes(lb, sizeof lb, by_label[0]);
            vsp_warn("  %10s  (unlabelled)", lb);
        }
    }
    char where[600], b[32];
    /* symbolisation: inside the fork bracket, so fork never copies libdw mid-update */
    vsp_walk_enter();
    if (stack_id) {
        describe(vsp_stack_site(stack_id), where, sizeof where);
        vsp_warn("the failing call: %s", where);
    }
    for (int shown = 0; table && shown < TOP; shown++) {
        int best = -1;
        for (int h = 0; h < AGG; h++)
            if (table[h].count && (best < 0 || table[h].bytes > table[best].bytes))
                best = h;
        if (best < 0)
            break;
        if (shown == 0)
            vsp_warn("top call sites:"); /* a section only when it has lines */
        vsp_human_bytes(b, sizeof b, table[best].bytes);
        describe(table[best].site, where, sizeof where);
        vsp_warn("  %10s in %u allocation%s  %s", b, table[best].count, table[best].count == 1 ? "" : "s", where);
        table[best].count = 0;
    }
    if (big[0].size)
        vsp_warn("largest live allocations:");
    for (int k = 0; k < TOP && big[k].size; k++) {
        vsp_human_bytes(b, sizeof b, big[k].size);
        describe(vsp_stack_site(big[k].stack_id), where, sizeof where);
        vsp_warn("  %10s at 0x%" PRIx64 "  %s", b, big[k].addr, where);
    }
    vsp_walk_leave();
    vsp_spin_unlock(&busy);
}
