/* How calls reach the hooks, and how a hook finds the function it stands in for.
 *
 * - The caller's own binding. A hook reached by symbol binding calls the definition the calling
 *   object would have bound to without the shim: the object is found from the return address
 *   (_dl_find_object, lock-free), the name is looked up in its own scope (its link map is a valid
 *   dlsym handle: the object and its dependencies), so a library loaded RTLD_LOCAL (Python
 *   extension modules, ctypes, plugins) reaches its own libcudart/libcuda, and two runtimes in one
 *   process each reach theirs. Bindings are cached per hook and per calling object (seqlock slots,
 *   no lock on the hot path) and forgotten when anything is unloaded (dlclose generation).
 * - The real-symbol table (reals[]): pointers handed to us by lookups (dlsym on a handle,
 *   cuGetProcAddress*, cudaGetDriverEntryPoint*) for which we handed out a hook instead, and
 *   dlsym(RTLD_NEXT) for callers in the global scope (the main program's scope contains the shim
 *   itself, so a lookup there comes back to us and falls through to this table).
 * - No pointer into unloaded code: after every dlclose, a kept pointer whose object is gone is
 *   dropped (NVIDIA's runtime dlcloses libcuda.so.1 when initialisation fails; plugin hosts unload
 *   CUDA plugins), and the driver helpers resolve again.
 * CUDA 13's runtime finds the driver by dlopen + dlsym(h, "cuGetProcAddress_v2") and then asks *the
 * pointer returned for "cuGetProcAddress"* for everything else, so that pointer must be ours too.
 * Must never: record a pointer into the shim as a real function (it would call itself forever),
 * change a lookup's handle or result code, or take a lock on the dlsym path. */
#define _GNU_SOURCE
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <errno.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#include "shim/base/atomic.h"
#include "shim/record/core.h"
#include "shim/hooks/hooks.h"
#include "shim/walk/walker.h"

VSP_HIDDEN vsp_dlsym_fn vsp_real_dlsym VSP_STARTUP_DATA;
static int (*real_dlclose)(void *) VSP_STARTUP_DATA;
/* Bumped after every dlclose: cached bindings of an older generation are not used. Starts at 1
 * so that a zeroed slot never matches. */
unsigned long vsp_dl_gen VSP_HIDDEN = 1; /* moves at each dlclose (atomic) */
__thread struct vsp_real_cache vsp_real_cache[VSP_REAL_CACHE] __attribute__((tls_model("initial-exec")));

/* Names as arrays, not pointers: a table of pointers is relocated at every process's start, and
 * with the API names' it made the relocated read-only data one page more (issue 22). */
struct hook_entry {
    char sym[40];
    char base[32]; /* "" for runtime symbols */
    int minver;
    int ptds;
};

/* Hook functions are defined (with their real CUDA types) in hooks_runtime.c / hooks_driver.c,
 * which list their addresses (hooks.h): no declaration here with another type (link-time
 * optimisation compares them). */
static const struct hook_entry entries[VSP_H_COUNT] = {
#define VSP_X(sym, base, ver, ptds, kind) [VSP_H_##sym] = {#sym, base, ver, ptds},
    VSP_HOOK_LIST(VSP_X)
#undef VSP_X
};
/* every name with its terminating NUL (C would let a name of exactly the array's length drop it) */
#define VSP_X(s_, b_, ver, ptds, kind)                                                      \
    _Static_assert(sizeof(#s_) <= sizeof(((struct hook_entry *)0)->sym), #s_ " fits");     \
    _Static_assert(sizeof(b_) <= sizeof(((struct hook_entry *)0)->base), #s_ "'s base fits");
VSP_HOOK_LIST(VSP_X)
#undef VSP_X

static inline void *hook_fn(int id)
{
    return vsp_runtime_hooks[id] ? vsp_runtime_hooks[id] : vsp_driver_hooks[id] ? vsp_driver_hooks[id] : vsp_lookup_hooks[id];
}

static void *reals[VSP_H_COUNT];
/* libc's dl_iterate_phdr (see the wrapper below), found with dlsym and dlclose */
typedef int (*vsp_iter_fn)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
static vsp_iter_fn real_iterate VSP_STARTUP_DATA;
/* ld.so's _dl_find_object, found with dlvsym too: a reference to it would make ld.so one more
 * needed object (its version definitions checked at every start, docs/PERFORMANCE.md). NULL
 * where the loader lacks it (glibc before 2.35, where the shim did not load at all before): every
 * address is then "not found": hooks use the real-symbol table, and every dlclose drops the kept
 * pointers, which are looked up again. */
typedef int (*vsp_find_fn)(void *, struct dl_find_object *);
static vsp_find_fn real_find_object VSP_STARTUP_DATA;

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
    void *c = dlvsym(RTLD_NEXT, "dlclose", "GLIBC_2.34");
    if (!c)
        c = dlvsym(RTLD_NEXT, "dlclose", "GLIBC_2.2.5");
    vsp_store_relaxed(&real_dlclose, (int (*)(void *))c); /* published by the release below */
    vsp_store_relaxed(&real_iterate, (vsp_iter_fn)dlvsym(RTLD_NEXT, "dl_iterate_phdr", "GLIBC_2.2.5")); /* idem */
    vsp_store_relaxed(&real_find_object, (vsp_find_fn)dlvsym(RTLD_DEFAULT, "_dl_find_object", "GLIBC_2.35")); /* idem */
    /* release: pairs with the acquire above and the plain load in the assembly entry (x86-64
     * loads are acquire). */
    vsp_store_release(&vsp_real_dlsym, (vsp_dlsym_fn)p);
}

/* _dl_find_object through the pointer resolved above (lock-free, as the loader's own). */
static int find_object(void *p, struct dl_find_object *fo)
{
    vsp_resolve_dlsym();
    /* acquire: published by vsp_resolve_dlsym's release of vsp_real_dlsym, stored before it */
    vsp_find_fn f = vsp_load_acquire(&vsp_real_dlsym) ? vsp_load_relaxed(&real_find_object) : NULL;
    return f ? f(p, fo) : -1;
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

/* The definition of sym in the scope of the loaded library `name` (the library and its
 * dependencies), whatever scope loaded it, looked up through a proper handle: dlopen(RTLD_NOLOAD)
 * finds it by name and gives it a search list if it lacks one (objects loaded at start-up), where
 * the bare link map would not do. NULL when it is not loaded, lacks the symbol, or the answer is
 * the shim's own (a global-scope object). */
static void *library_symbol(const char *name, const char *sym, const char *version)
{
    vsp_resolve_dlsym();
    if (!name || !*name || !vsp_real_dlsym)
        return NULL;
    void *h = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
    if (!h)
        return NULL;
    void *p = version ? dlvsym(h, sym, version) : vsp_real_dlsym(h, sym);
    real_dlclose(h); /* only drops the reference NOLOAD took; nothing is unloaded */
    return p && !vsp_in_shim(p) ? p : NULL;
}

/* A driver symbol from the loaded libcuda.so.1 (the runtime dlopens it RTLD_LOCAL, where
 * RTLD_NEXT cannot see). */
static void *driver_symbol(const char *sym)
{
    return library_symbol("libcuda.so.1", sym, NULL);
}

/* sym in the library that contains the function `owner`. */
static void *owner_symbol(const void *owner, const char *sym)
{
    Dl_info di;
    if (!owner || vsp_in_shim(owner) || !dladdr(owner, &di))
        return NULL;
    return library_symbol(di.dli_fname, sym, NULL);
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
    if (!p && entries[id].base[0])
        p = driver_symbol(entries[id].sym);
    if (p && offer_real(id, p))
        return p;
    return vsp_load_acquire(&reals[id]);
}

/* ---- the caller's own binding ---- */

#define BIND_WAYS 4

/* One cached binding: calls from [lo, hi) (one object's mapping) go to fn, while gen is current.
 * A seqlock: seq is odd while a writer fills the slot. */
struct bind_slot {
    unsigned long seq;
    uintptr_t lo, hi;
    unsigned long gen;
    void *fn;
};
static struct bind_slot binds[VSP_H_COUNT][BIND_WAYS];

static void *bind_lookup(int id, uintptr_t ret, unsigned long gen)
{
    for (int w = 0; w < BIND_WAYS; w++) {
        struct bind_slot *b = &binds[id][w];
        /* acquire: the field loads below happen after this load (seqlock read side) */
        unsigned long s1 = vsp_load_acquire(&b->seq);
        if (s1 == 0)
            return NULL; /* ways fill in order: nothing further */
        if (s1 & 1)
            continue;
        uintptr_t lo = vsp_load_relaxed(&b->lo), hi = vsp_load_relaxed(&b->hi);
        unsigned long g = vsp_load_relaxed(&b->gen);
        void *fn = vsp_load_relaxed(&b->fn);
        /* acquire fence: the field loads are complete before seq is read again */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (vsp_load_relaxed(&b->seq) != s1)
            continue;
        if (g == gen && ret >= lo && ret < hi)
            return fn;
    }
    return NULL;
}

static void bind_store(int id, uintptr_t lo, uintptr_t hi, unsigned long gen, void *fn)
{
    int way = -1;
    for (int w = 0; w < BIND_WAYS && way < 0; w++) {
        unsigned long s = vsp_load_acquire(&binds[id][w].seq);
        if (s == 0 || (!(s & 1) && vsp_load_relaxed(&binds[id][w].gen) != gen))
            way = w;
    }
    if (way < 0)
        way = (int)((lo >> 12) % BIND_WAYS);
    struct bind_slot *b = &binds[id][way];
    unsigned long s = vsp_load_relaxed(&b->seq);
    if ((s & 1) || !vsp_cas_relaxed(&b->seq, &s, s + 1))
        return; /* another thread is writing it: leave the cache as it is */
    /* release fence: the odd seq is visible before any field store below (seqlock write side) */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vsp_store_relaxed(&b->lo, lo);
    vsp_store_relaxed(&b->hi, hi);
    vsp_store_relaxed(&b->gen, gen);
    vsp_store_relaxed(&b->fn, fn);
    /* release: the fields are complete before the even seq that readers check */
    vsp_store_release(&b->seq, s + 2);
}

/* An object's dynamic symbol tables, from its dynamic section. Every address is checked to lie in
 * the object's mapping [lo, hi) before it is read. */
struct dyn {
    uintptr_t lo, hi;
    const ElfW(Sym) *symtab;
    const char *strtab;
    const ElfW(Half) *versym;
    const ElfW(Verneed) *verneed;
    const uint32_t *gnu_hash, *hash;
};

static int dyn_in(const struct dyn *d, const void *p, size_t n)
{
    return (uintptr_t)p >= d->lo && (uintptr_t)p + n <= d->hi;
}

static int dyn_read(struct dyn *d, const struct dl_find_object *fo)
{
    const struct link_map *lm = fo->dlfo_link_map;
    memset(d, 0, sizeof *d);
    d->lo = (uintptr_t)fo->dlfo_map_start;
    d->hi = (uintptr_t)fo->dlfo_map_end;
    for (const ElfW(Dyn) *e = lm->l_ld; e && dyn_in(d, e, sizeof *e) && e->d_tag != DT_NULL; e++) {
        /* glibc relocates these in place on x86-64; a value below the load bias is not yet */
        uintptr_t v = e->d_un.d_ptr < lm->l_addr ? e->d_un.d_ptr + lm->l_addr : e->d_un.d_ptr;
        switch (e->d_tag) {
        case DT_SYMTAB: d->symtab = (const void *)v; break;
        case DT_STRTAB: d->strtab = (const void *)v; break;
        case DT_VERSYM: d->versym = (const void *)v; break;
        case DT_VERNEED: d->verneed = (const void *)v; break;
        case DT_GNU_HASH: d->gnu_hash = (const void *)v; break;
        case DT_HASH: d->hash = (const void *)v; break;
        }
    }
    return d->symtab && d->strtab ? 0 : -1;
}

/* The symbol version the object requires for its reference to sym ("libcudart.so.12"), from its
 * .gnu.version_r, or NULL: no such reference, or an unversioned one. */
static const char *required_version(const struct dl_find_object *fo, const char *sym)
{
    struct dyn d;
    if (dyn_read(&d, fo) < 0 || !d.versym || !d.verneed || !(d.gnu_hash || d.hash))
        return NULL;
    /* References (undefined symbols) come before the hashed ones with DT_GNU_HASH (symoffset);
     * with DT_HASH they may be anywhere below nchain. */
    const uint32_t *count = d.gnu_hash ? &d.gnu_hash[1] : &d.hash[1];
    if (!dyn_in(&d, count, 4))
        return NULL;
    for (uint32_t i = 1; i < *count && dyn_in(&d, &d.symtab[i], sizeof d.symtab[i]) && dyn_in(&d, &d.versym[i], 2);
         i++) {
        const char *name = d.strtab + d.symtab[i].st_name;
        if (d.symtab[i].st_shndx != SHN_UNDEF || !dyn_in(&d, name, 1) || strcmp(name, sym) != 0)
            continue;
        unsigned want = d.versym[i] & 0x7fff;
        if (want <= 1)
            return NULL; /* local or global (unversioned) reference */
        const ElfW(Verneed) *vn = d.verneed;
        for (int files = 0; files < 1024 && dyn_in(&d, vn, sizeof *vn); files++) {
            const ElfW(Vernaux) *va = (const void *)((const char *)vn + vn->vn_aux);
            for (unsigned k = 0; k < vn->vn_cnt && dyn_in(&d, va, sizeof *va); k++) {
                if (va->vna_other == want)
                    return dyn_in(&d, d.strtab + va->vna_name, 1) ? d.strtab + va->vna_name : NULL;
                va = (const void *)((const char *)va + va->vna_next);
            }
            if (!vn->vn_next)
                break;
            vn = (const void *)((const char *)vn + vn->vn_next);
        }
        return NULL;
    }
    return NULL;
}

/* Is the definition at p unversioned (its object has no version information, or the symbol is in
 * the base version)? The dynamic linker lets such a definition satisfy a versioned reference;
 * dlvsym does not, so this is asked of dlsym's answer. */
static int definition_unversioned(void *p)
{
    Dl_info di;
    const ElfW(Sym) *es = NULL;
    struct dl_find_object fo;
    struct dyn d;
    if (!dladdr1(p, &di, (void **)&es, RTLD_DL_SYMENT) || !es || find_object(p, &fo) != 0 ||
        dyn_read(&d, &fo) < 0)
        return 0;
    if (!d.versym)
        return 1;
    const ElfW(Half) *v = &d.versym[es - d.symtab];
    return es >= d.symtab && dyn_in(&d, v, 2) && (*v & 0x7fff) <= 1;
}

/* What the dynamic linker would have bound the caller's reference to without the shim: the global
 * scope first (the objects after the shim: other preloaded interposers, the program's own
 * libraries), then the caller's own scope (a library loaded RTLD_LOCAL and its dependencies),
 * honouring the version the reference requires — which is how a plugin built against
 * libcudart.so.12 keeps its own runtime while libcudart.so.13 sits in the global scope. */
static void *caller_binding(int id, const struct dl_find_object *fo)
{
    const char *sym = entries[id].sym;
    const char *ver = required_version(fo, sym);
    /* The first definition after the shim; an unversioned one (another interposer) satisfies a
     * versioned reference too, one of another version does not: then the exact version. */
    void *fn = vsp_real_dlsym(RTLD_NEXT, sym);
    if (fn && ver && !definition_unversioned(fn))
        fn = dlvsym(RTLD_NEXT, sym, ver);
    if (fn && !vsp_in_shim(fn))
        return fn;
    return library_symbol(fo->dlfo_link_map->l_name, sym, ver);
}

static void *real_for(int id, const void *ret);

/* errno as the caller left it: the hooks' cached lookup (hooks.h) leaves it alone, and so does
 * this, their slow path, so a hook need not save it around the lookup (issue 22: a call and two
 * stores less on every pass-through). */
void *vsp_real_for(int id, const void *ret)
{
    int saved = errno;
    void *fn = real_for(id, ret);
    errno = saved;
    return fn;
}

static void *real_for(int id, const void *ret)
{
    /* acquire: pairs with the release bump in dlclose; bindings of older generations are dead */
    unsigned long gen = vsp_load_acquire(&vsp_dl_gen);
    void *fn = bind_lookup(id, (uintptr_t)ret, gen);
    if (VSP_LIKELY(fn != NULL)) {
        /* into the thread's cache (hooks.h): emptied first, keyed last, so that a signal handler
         * of this thread that meets the entry half written finds it empty */
        struct vsp_real_cache *c = &vsp_real_cache[vsp_real_cache_slot(id, ret)];
        struct vsp_real_cache *d = &vsp_real_cache[vsp_real_cache_slot(id, ret) ^ 1];
        /* the entry's slot, or its pair where the slot holds a live entry and the pair does not
         * (a live entry is of this generation: another key whose slot is this one or the pair) */
        if (c->key >> 8 == gen && d->key >> 8 != gen)
            c = d;
        c->key = 0;
        __asm__ volatile("" ::: "memory");
        c->ret = ret;
        c->fn = fn;
        __asm__ volatile("" ::: "memory");
        c->key = gen << 8 | (unsigned)id;
        __asm__ volatile("" ::: "memory");
        /* a signal handler of this thread that filled the same slot between the stores above
         * (its key zeroed first, then its ret and fn) left a mix: emptied again */
        if (c->ret != ret || c->fn != fn)
            c->key = 0;
        return fn;
    }
    struct dl_find_object fo;
    if (!ret || vsp_in_shim(ret) || find_object((void *)ret, &fo) != 0)
        return vsp_real_get(id);
    vsp_resolve_dlsym();
    fn = vsp_real_dlsym ? caller_binding(id, &fo) : NULL;
    if (!fn)
        fn = vsp_real_get(id); /* a pointer a lookup gave us (the runtime's driver calls) */
    if (fn)
        bind_store(id, (uintptr_t)fo.dlfo_map_start, (uintptr_t)fo.dlfo_map_end, gen, fn);
    return fn;
}

/* ---- unloading ---- */

static int is_loaded(const void *p)
{
    struct dl_find_object fo;
    return find_object((void *)p, &fo) == 0;
}

static void forget_unloaded(void)
{
    /* release: every binding cached before is stale for readers that see the new generation */
    __atomic_fetch_add(&vsp_dl_gen, 1, __ATOMIC_RELEASE);
    vsp_walker_modules_changed(); /* cached unwind rules may describe code that is gone */
    for (int i = 0; i < VSP_H_COUNT; i++) {
        void *p = vsp_load_acquire(&reals[i]);
        if (p && !is_loaded(p)) {
            vsp_cas_acq_rel(&reals[i], &p, NULL); /* a newer pointer offered meanwhile stays */
            vsp_debug("%s: its library was unloaded; pointer dropped", entries[i].sym);
        }
    }
    vsp_helpers_forget();
}

/* dl_iterate_phdr holds the loader's lock while its callback runs, and glibc (2.36) does not take
 * that lock around fork: a child forked while another thread was inside it inherits the lock held
 * and deadlocks at its first dl_iterate_phdr -- which the shim makes when the child's first CUDA
 * call opens its trace (a host that never called it would not hang without us). Every call made
 * through the symbol (the host's, libgcc's, the shim's own) runs inside the shim's fork bracket, so
 * fork waits for it to return and no new one starts while fork runs. */

/* Not instrumented, and no bracket in a sanitizer build: ThreadSanitizer's and AddressSanitizer's
 * runtimes call it from their own start-up, before instrumented code (the bracket's) can run. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define VSP_ITERATE_BRACKET 0
#else
#define VSP_ITERATE_BRACKET 1
#endif
__attribute__((no_sanitize_thread, no_sanitize_address, no_sanitize_undefined)) VSP_EXPORT int
dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    if (VSP_UNLIKELY(!vsp_load_acquire(&vsp_real_dlsym)))
        vsp_resolve_dlsym(); /* acquire: real_iterate is stored before vsp_real_dlsym's release */
    vsp_iter_fn f = vsp_load_relaxed(&real_iterate);
    if (VSP_UNLIKELY(!f))
        return 0; /* no libc one to be found: cannot happen in a dynamically linked process */
    if (!VSP_ITERATE_BRACKET)
        return f(cb, data);
    vsp_walk_enter();
    int r = f(cb, data);
    vsp_walk_leave();
    return r;
}

/* dlclose has no caller-relative behaviour, so a plain wrapper is enough (unlike dlsym). */
VSP_EXPORT int dlclose(void *handle)
{
    if (VSP_UNLIKELY(!real_dlclose))
        vsp_resolve_dlsym();
    if (VSP_UNLIKELY(!real_dlclose))
        return -1; /* no libc dlclose to be found: cannot happen in a dynamically linked process */
    int r = real_dlclose(handle);
    int saved = errno;
    if (vsp_is_ready())
        forget_unloaded();
    errno = saved;
    return r;
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
            return hook_fn(i);
        }
        vsp_debug("dlsym(%s): a second copy, left unhooked", name);
        return real;
    }
    return real;
}

void *vsp_wrap_by_gpa(const char *name, int version, unsigned long long flags, void *real, void *owner)
{
    if (!real || !name || name[0] != 'c' || name[1] != 'u')
        return real;
    vsp_init();
    if (vsp_in_shim(real)) {
        /* The lookup handed back one of our exported hooks (its library took the address of its
         * own exported function, which the preload interposes): the hook stays the answer, and the
         * real definition comes from the library that owns the lookup. */
        for (int i = 0; i < VSP_H_COUNT; i++) {
            if (hook_fn(i) != real)
                continue;
            void *p = owner_symbol(owner, entries[i].sym);
            if (p && offer_real(i, p))
                vsp_debug("cuGetProcAddress(%s): the lookup returned our own %s; bound to its library's",
                          name, entries[i].sym);
            break;
        }
        return real;
    }
    int ptds = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) ? 1 : 0;
    int best = -1;
    for (int i = 0; i < VSP_H_COUNT; i++) {
        const struct hook_entry *e = &entries[i];
        if (!e->base[0] || strcmp(e->base, name) != 0 || e->minver > version)
            continue;
        if (e->ptds >= 0 && e->ptds != ptds)
            continue;
        if (best < 0 || e->minver > entries[best].minver)
            best = i;
    }
    if (best < 0)
        return real;
    if (offer_real(best, real)) {
        vsp_debug("cuGetProcAddress(%s, %d, %llu): hooked as %s", name, version, flags, entries[best].sym);
        return hook_fn(best);
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

static struct helper h_ctx_device, h_meminfo, h_rt_meminfo, h_range, h_pool_attr, h_default_pool;

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
    if (!p && !vsp_load_relaxed(&h->tried))
        vsp_resolve_dlsym();
    if (!p && !vsp_load_relaxed(&h->tried) && vsp_real_dlsym) {
        p = vsp_real_dlsym(RTLD_NEXT, sym); /* a program linked with -lcuda */
        if (!p)
            p = driver_symbol(sym);
    }
    vsp_store_relaxed(&h->tried, 1);
    if (p)
        vsp_store_release(&h->fn, p); /* release: pairs with the acquire at the top */
    return p;
}

/* The runtime's cudaMemGetInfo: where no driver lookup is reachable (a runtime whose driver we
 * never saw), or the driver's call fails (no context on the thread), the runtime still knows. From
 * the runtime the asking thread's last runtime hook called (vsp_tls.runtime_fn: the one that
 * works for it, in a process that tried another first), else from the first runtime any hook
 * bound to (noted_runtime_fn, until it is unloaded: vsp_helpers_forget). The process-wide word is
 * written once, not at every call: issue 22, every hook stored its real function there,
 * cudaMalloc's and cudaFree's in turn, and two threads allocating at once passed that line between
 * their cores twice a pair (about 180 ns a pair with 2 threads); the thread's own word costs a
 * store to its own TLS. */
static void *noted_runtime_fn;

void vsp_helpers_forget(void)
{
    struct helper *all[] = {&h_ctx_device, &h_meminfo, &h_rt_meminfo, &h_range, &h_pool_attr, &h_default_pool};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        void *p = vsp_load_acquire(&all[i]->fn);
        if (p && is_loaded(p))
            continue;
        vsp_store_relaxed(&all[i]->fn, NULL);
        vsp_store_relaxed(&all[i]->tried, 0);
        vsp_store_relaxed(&all[i]->tried_gpa, NULL);
    }
    void *rt = vsp_load_relaxed(&noted_runtime_fn);
    if (rt && !is_loaded(rt))
        vsp_cas_relaxed(&noted_runtime_fn, &rt, NULL); /* the next runtime hook notes another */
}

int32_t vsp_current_device(void)
{
    CUresult (*get)(CUdevice *) =
        (CUresult(*)(CUdevice *))helper_fn(&h_ctx_device, "cuCtxGetDevice", 2000, "cuCtxGetDevice");
    CUdevice d;
    if (get && get(&d) == CUDA_SUCCESS)
        return (int32_t)d;
    return -1;
}

int vsp_pool_attribute(uint64_t pool, int attr, uint64_t *value)
{
    CUresult (*get)(CUmemoryPool, CUmemPool_attribute, void *) = (CUresult(*)(CUmemoryPool, CUmemPool_attribute, void *))
        helper_fn(&h_pool_attr, "cuMemPoolGetAttribute", 11020, "cuMemPoolGetAttribute");
    cuuint64_t v;
    if (!get || get((CUmemoryPool)(uintptr_t)pool, (CUmemPool_attribute)attr, &v) != CUDA_SUCCESS)
        return -1;
    *value = v;
    return 0;
}

uint64_t vsp_default_pool(int device)
{
    CUresult (*get)(CUmemoryPool *, CUdevice) = (CUresult(*)(CUmemoryPool *, CUdevice))helper_fn(
        &h_default_pool, "cuDeviceGetDefaultMemPool", 11020, "cuDeviceGetDefaultMemPool");
    CUmemoryPool p;
    return get && device >= 0 && get(&p, device) == CUDA_SUCCESS ? (uint64_t)(uintptr_t)p : 0;
}

uint64_t vsp_address_range_size(uint64_t ptr)
{
    CUresult (*range)(CUdeviceptr *, size_t *, CUdeviceptr) = (CUresult(*)(CUdeviceptr *, size_t *, CUdeviceptr))helper_fn(
        &h_range, "cuMemGetAddressRange", 3020, "cuMemGetAddressRange_v2");
    CUdeviceptr base;
    size_t size;
    return range && range(&base, &size, (CUdeviceptr)ptr) == CUDA_SUCCESS ? size : 0;
}

void vsp_note_runtime(void *real_fn)
{
    vsp_tls.runtime_fn = real_fn;
    /* relaxed: a pointer used alone; two first calls racing both store a good one */
    if (VSP_UNLIKELY(!vsp_load_relaxed(&noted_runtime_fn)))
        vsp_store_relaxed(&noted_runtime_fn, real_fn);
}

static void *runtime_meminfo(void)
{
    void *p = vsp_load_acquire(&h_rt_meminfo.fn);
    if (p || vsp_load_relaxed(&h_rt_meminfo.tried))
        return p;
    void *rt = vsp_tls.runtime_fn;
    if (!rt || !is_loaded(rt)) /* (a thread's word outlives a dlclose: only the process-wide one is forgotten) */
        rt = vsp_load_relaxed(&noted_runtime_fn);
    if (!rt)
        return NULL;
    p = owner_symbol(rt, "cudaMemGetInfo");
    vsp_store_relaxed(&h_rt_meminfo.tried, 1);
    if (p)
        vsp_store_release(&h_rt_meminfo.fn, p); /* release: pairs with the acquire above */
    return p;
}

int vsp_device_meminfo(uint64_t *free_b, uint64_t *total_b)
{
    CUresult (*info)(size_t *, size_t *) =
        (CUresult(*)(size_t *, size_t *))helper_fn(&h_meminfo, "cuMemGetInfo", 3020, "cuMemGetInfo_v2");
    size_t f, t;
    if (info && info(&f, &t) == CUDA_SUCCESS) {
        *free_b = f;
        *total_b = t;
        return 0;
    }
    cudaError_t (*rt)(size_t *, size_t *) = (cudaError_t(*)(size_t *, size_t *))runtime_meminfo();
    if (rt && rt(&f, &t) == cudaSuccess) {
        *free_b = f;
        *total_b = t;
        return 0;
    }
    return -1;
}
