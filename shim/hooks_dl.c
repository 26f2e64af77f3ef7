/* How calls reach the hooks: the real-symbol table, the dlsym interposer's C half (lookups on a
 * real handle; the special handles never get here, see dlsym_x86_64.S), and the pointer
 * substitution in cuGetProcAddress / cuGetProcAddress_v2 / cudaGetDriverEntryPoint*. CUDA 13's
 * runtime finds the driver by dlopen + dlsym(h, "cuGetProcAddress_v2") and then asks *the pointer
 * returned for "cuGetProcAddress"* for everything else, so that pointer must be ours too.
 * Must never: record a pointer into the shim as a real function (it would call itself forever),
 * change a lookup's handle or result code, or take a lock on the dlsym path. */
#define _GNU_SOURCE
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "atomic.h"
#include "core.h"
#include "hooks.h"

VSP_HIDDEN vsp_dlsym_fn vsp_real_dlsym;

struct hook_entry {
    const char *sym;
    const char *base;
    int minver;
    int ptds;
    void *hook;
};

/* Hook functions are defined (with their real CUDA types) in hooks_runtime.c / hooks_driver.c;
 * here only their addresses are needed. */
#define VSP_X(sym, base, ver, ptds) extern char vsp_h_##sym[] VSP_HIDDEN;
VSP_HOOK_LIST(VSP_X)
#undef VSP_X

static const struct hook_entry entries[VSP_H_COUNT] = {
#define VSP_X(sym, base, ver, ptds) [VSP_H_##sym] = {#sym, base, ver, ptds, (void *)vsp_h_##sym},
    VSP_HOOK_LIST(VSP_X)
#undef VSP_X
};

static void *reals[VSP_H_COUNT];

/* Not instrumented: sanitizer runtimes call dlsym(RTLD_NEXT, ...) from their own start-up, before
 * they can run instrumented code, and the first such call lands here. */
__attribute__((no_sanitize_thread, no_sanitize_address, no_sanitize_undefined)) void vsp_resolve_dlsym(void)
{
    if (vsp_load_acquire(&vsp_real_dlsym))
        return;
    /* dlsym exists as GLIBC_2.34 (default) and GLIBC_2.2.5; we must not call "dlsym" by name,
     * which would be ourselves. */
    void *p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!p)
        p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    /* release: pairs with the acquire above and the plain load in the assembly entry (x86-64
     * loads are acquire). */
    vsp_store_release(&vsp_real_dlsym, (vsp_dlsym_fn)p);
}

/* Keep the first real pointer offered for a hook. Returns 1 if the slot now holds `p` (so the
 * hook may be handed out in its place), 0 if p is the shim's own code or a different library's
 * function got there first (then the caller keeps the real pointer, unwrapped). */
static int offer_real(int id, void *p)
{
    if (!p || vsp_in_shim(p))
        return 0;
    void *expected = NULL;
    /* acq_rel: the winner publishes the pointer to every hook call that loads it with acquire. */
    if (vsp_cas_acq_rel(&reals[id], &expected, p))
        return 1;
    return expected == p;
}

void *vsp_real_get(int id)
{
    void *p = vsp_load_acquire(&reals[id]);
    if (VSP_LIKELY(p != NULL))
        return p;
    vsp_resolve_dlsym();
    if (!vsp_real_dlsym)
        return NULL;
    p = vsp_real_dlsym(RTLD_NEXT, entries[id].sym);
    if (p && offer_real(id, p))
        return p;
    return vsp_load_acquire(&reals[id]);
}

void *vsp_wrap_by_symbol(const char *name, void *real)
{
    if (!real || !name || name[0] != 'c' || name[1] != 'u')
        return real;
    for (int i = 0; i < VSP_H_COUNT; i++) {
        if (strcmp(entries[i].sym, name) != 0)
            continue;
        vsp_init(); /* for the shim's address range */
        if (vsp_in_shim(real))
            return real;
        if (offer_real(i, real)) {
            vsp_debug("dlsym(%s): hooked", name);
            return entries[i].hook;
        }
        vsp_debug("dlsym(%s): a second copy, left unhooked", name);
        return real;
    }
    return real;
}

void *vsp_wrap_by_gpa(const char *name, int version, unsigned long long flags, void *real)
{
    if (!real || !name || name[0] != 'c' || name[1] != 'u')
        return real;
    int ptds = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) ? 1 : 0;
    int best = -1;
    for (int i = 0; i < VSP_H_COUNT; i++) {
        const struct hook_entry *e = &entries[i];
        if (!e->base || strcmp(e->base, name) != 0 || e->minver > version)
            continue;
        if (e->ptds >= 0 && e->ptds != ptds)
            continue;
        if (best < 0 || e->minver > entries[best].minver)
            best = i;
    }
    if (best < 0)
        return real;
    vsp_init();
    if (vsp_in_shim(real))
        return real;
    if (offer_real(best, real)) {
        vsp_debug("cuGetProcAddress(%s, %d, %llu): hooked as %s", name, version, flags, entries[best].sym);
        return entries[best].hook;
    }
    return real;
}

/* C half of the dlsym interposer: a lookup on a real handle. */
VSP_HIDDEN void *vsp_dlsym_handle(void *handle, const char *name)
{
    if (VSP_UNLIKELY(!vsp_real_dlsym))
        vsp_resolve_dlsym();
    void *p = vsp_real_dlsym(handle, name);
    return vsp_wrap_by_symbol(name, p);
}

/* ---- driver helpers the core needs: device ordinal and free memory ---- */

typedef CUresult (*gpa_v2_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

struct helper {
    void *fn;        /* resolved function, NULL while unknown */
    void *tried_gpa; /* the cuGetProcAddress we last failed with (retry when it changes) */
    int tried;
};

/* Resolve a driver function for the shim's own use. Failures are cached until a (new) driver
 * lookup function appears, so the hot path never repeats a failing dlsym (which would malloc). */
static void *helper_fn(struct helper *h, const char *base, int version, const char *sym)
{
    void *p = vsp_load_acquire(&h->fn);
    if (VSP_LIKELY(p != NULL))
        return p;
    void *gpa = vsp_load_acquire(&reals[VSP_H_cuGetProcAddress_v2]);
    if (vsp_load_relaxed(&h->tried) && vsp_load_relaxed(&h->tried_gpa) == gpa)
        return NULL;
    vsp_store_relaxed(&h->tried_gpa, gpa);
    if (gpa && ((gpa_v2_fn)gpa)(base, &p, version, 0, NULL) != CUDA_SUCCESS)
        p = NULL;
    if (!p && !vsp_load_relaxed(&h->tried) && vsp_real_dlsym)
        p = vsp_real_dlsym(RTLD_NEXT, sym); /* a program linked with -lcuda */
    vsp_store_relaxed(&h->tried, 1);
    if (p)
        vsp_store_release(&h->fn, p); /* release: pairs with the acquire at the top */
    return p;
}

int32_t vsp_current_device(void)
{
    static struct helper fn;
    CUresult (*get)(CUdevice *) = (CUresult(*)(CUdevice *))helper_fn(&fn, "cuCtxGetDevice", 2000, "cuCtxGetDevice");
    CUdevice d;
    if (get && get(&d) == CUDA_SUCCESS)
        return (int32_t)d;
    return -1;
}

int vsp_device_meminfo(uint64_t *free_b, uint64_t *total_b)
{
    static struct helper fn;
    CUresult (*info)(size_t *, size_t *) =
        (CUresult(*)(size_t *, size_t *))helper_fn(&fn, "cuMemGetInfo", 3020, "cuMemGetInfo_v2");
    size_t f, t;
    if (info && info(&f, &t) == CUDA_SUCCESS) {
        *free_b = f;
        *total_b = t;
        return 0;
    }
    return -1;
}
