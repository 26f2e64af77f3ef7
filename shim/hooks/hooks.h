/* The interposed entry points, listed once. X(symbol, gpa_base_name, gpa_min_version, ptds, kind):
 *  - symbol: the exported name (what dlsym and the dynamic linker look for); the hook function
 *    itself is the hidden vsp_h_<symbol>, and <symbol> is an exported alias of it;
 *  - gpa_base_name/min_version/ptds: how cuGetProcAddress names it: the base name, the first
 *    cudaVersion at which this ABI is the one returned, and whether it is the per-thread default
 *    stream variant (1), the legacy one (0), or either (-1). "" for runtime symbols;
 *  - kind: RT (defined in hooks_runtime.c), DRV (hooks_driver.c) or LK (hooks_lookup.c): each file
 *    lists the addresses of its own hooks (vsp_runtime_hooks, vsp_driver_hooks, vsp_lookup_hooks),
 *    with their real types in scope.
 * A lookup by (name, version, flags) picks the entry with the highest min_version <= version;
 * below the lowest one (e.g. the 32-bit-pointer cuMemAlloc of CUDA 3.1, which a 64-bit process
 * cannot use for device memory) the real pointer is handed back unwrapped. The old ABIs of the
 * host allocators (cuMemAllocHost with a 32-bit size, cuMemHostRegister before 6.5) are hooked:
 * otherwise they would bypass VRAMSPY_ENFORCE and the host-fallback audit. */
#ifndef VSP_HOOKS_H
#define VSP_HOOKS_H

#define VSP_HOOK_LIST(X)                                                    \
    X(cudaMalloc, "", 0, -1, RT)                                              \
    X(cudaMallocManaged, "", 0, -1, RT)                                       \
    X(cudaMallocHost, "", 0, -1, RT)                                          \
    X(cudaHostAlloc, "", 0, -1, RT)                                           \
    X(cudaMallocPitch, "", 0, -1, RT)                                         \
    X(cudaMalloc3D, "", 0, -1, RT)                                            \
    X(cudaMallocArray, "", 0, -1, RT)                                         \
    X(cudaMalloc3DArray, "", 0, -1, RT)                                       \
    X(cudaMallocMipmappedArray, "", 0, -1, RT)                                \
    X(cudaMallocAsync, "", 0, -1, RT)                                         \
    X(cudaMallocAsync_ptsz, "", 0, -1, RT)                                    \
    X(cudaMallocFromPoolAsync, "", 0, -1, RT)                                 \
    X(cudaMallocFromPoolAsync_ptsz, "", 0, -1, RT)                            \
    X(cudaFree, "", 0, -1, RT)                                                \
    X(cudaFreeHost, "", 0, -1, RT)                                            \
    X(cudaFreeAsync, "", 0, -1, RT)                                           \
    X(cudaFreeAsync_ptsz, "", 0, -1, RT)                                      \
    X(cudaFreeArray, "", 0, -1, RT)                                           \
    X(cudaFreeMipmappedArray, "", 0, -1, RT)                                  \
    X(cudaHostRegister, "", 0, -1, RT)                                        \
    X(cudaHostUnregister, "", 0, -1, RT)                                      \
    X(cudaGetDriverEntryPoint, "", 0, -1, LK)                                 \
    X(cudaGetDriverEntryPoint_ptsz, "", 0, -1, LK)                            \
    X(cudaGetDriverEntryPointByVersion, "", 0, -1, LK)                        \
    X(cudaGetDriverEntryPointByVersion_ptsz, "", 0, -1, LK)                   \
    X(cuGetProcAddress, "cuGetProcAddress", 11030, -1, LK)                      \
    X(cuGetProcAddress_v2, "cuGetProcAddress", 12000, -1, LK)                   \
    X(cuInit, "cuInit", 2000, -1, DRV)                                           \
    X(cuMemAlloc_v2, "cuMemAlloc", 3020, -1, DRV)                                \
    X(cuMemAllocPitch_v2, "cuMemAllocPitch", 3020, -1, DRV)                      \
    X(cuMemAllocManaged, "cuMemAllocManaged", 6000, -1, DRV)                     \
    X(cuMemFree_v2, "cuMemFree", 3020, -1, DRV)                                  \
    X(cuMemAllocHost, "cuMemAllocHost", 2000, -1, DRV)                           \
    X(cuMemAllocHost_v2, "cuMemAllocHost", 3020, -1, DRV)                        \
    X(cuMemHostAlloc, "cuMemHostAlloc", 2020, -1, DRV)                           \
    X(cuMemFreeHost, "cuMemFreeHost", 2000, -1, DRV)                             \
    X(cuMemHostRegister, "cuMemHostRegister", 4000, -1, DRV)                     \
    X(cuMemHostRegister_v2, "cuMemHostRegister", 6050, -1, DRV)                  \
    X(cuMemHostUnregister, "cuMemHostUnregister", 4000, -1, DRV)                 \
    X(cuMemAllocAsync, "cuMemAllocAsync", 11020, 0, DRV)                         \
    X(cuMemAllocAsync_ptsz, "cuMemAllocAsync", 11020, 1, DRV)                    \
    X(cuMemAllocFromPoolAsync, "cuMemAllocFromPoolAsync", 11020, 0, DRV)         \
    X(cuMemAllocFromPoolAsync_ptsz, "cuMemAllocFromPoolAsync", 11020, 1, DRV)    \
    X(cuMemFreeAsync, "cuMemFreeAsync", 11020, 0, DRV)                           \
    X(cuMemFreeAsync_ptsz, "cuMemFreeAsync", 11020, 1, DRV)                      \
    X(cuMemCreate, "cuMemCreate", 10020, -1, DRV)                                \
    X(cuMemRelease, "cuMemRelease", 10020, -1, DRV)                              \
    X(cuMemMap, "cuMemMap", 10020, -1, DRV)                                      \
    X(cuMemUnmap, "cuMemUnmap", 10020, -1, DRV)                                  \
    X(cuArrayCreate_v2, "cuArrayCreate", 3020, -1, DRV)                          \
    X(cuArray3DCreate_v2, "cuArray3DCreate", 3020, -1, DRV)                      \
    X(cuArrayDestroy, "cuArrayDestroy", 2000, -1, DRV)                           \
    X(cuMipmappedArrayCreate, "cuMipmappedArrayCreate", 5000, -1, DRV)           \
    X(cuMipmappedArrayDestroy, "cuMipmappedArrayDestroy", 5000, -1, DRV)        \
    X(cuMemPoolCreate, "cuMemPoolCreate", 11020, -1, DRV)                        \
    X(cuMemPoolDestroy, "cuMemPoolDestroy", 11020, -1, DRV)                      \
    X(cuDeviceSetMemPool, "cuDeviceSetMemPool", 11020, -1, DRV)                  \
    X(cuMemSetMemPool, "cuMemSetMemPool", 13000, -1, DRV)                        \
    X(cuMemGetDefaultMemPool, "cuMemGetDefaultMemPool", 13000, -1, DRV)          \
    X(cudaMemPoolCreate, "", 0, -1, RT)                                       \
    X(cudaMemPoolDestroy, "", 0, -1, RT)                                      \
    X(cudaDeviceSetMemPool, "", 0, -1, RT)                                    \
    X(cuGraphAddMemAllocNode, "cuGraphAddMemAllocNode", 11040, -1, DRV)          \
    X(cuGraphAddMemFreeNode, "cuGraphAddMemFreeNode", 11040, -1, DRV)            \
    X(cuIpcOpenMemHandle_v2, "cuIpcOpenMemHandle", 11000, -1, DRV)               \
    X(cuIpcCloseMemHandle, "cuIpcCloseMemHandle", 4010, -1, DRV)                \
    X(cuMemAddressReserve, "cuMemAddressReserve", 10020, -1, DRV)                \
    X(cuMemAddressFree, "cuMemAddressFree", 10020, -1, DRV)                      \
    X(cuMemHostGetDevicePointer_v2, "cuMemHostGetDevicePointer", 3020, -1, DRV)  \
    X(cudaHostGetDevicePointer, "", 0, -1, RT)                                \
    X(cuImportExternalMemory, "cuImportExternalMemory", 10000, -1, DRV)          \
    X(cuExternalMemoryGetMappedBuffer, "cuExternalMemoryGetMappedBuffer", 10000, -1, DRV) \
    X(cuDestroyExternalMemory, "cuDestroyExternalMemory", 10000, -1, DRV)        \
    X(cuMemImportFromShareableHandle, "cuMemImportFromShareableHandle", 10020, -1, DRV) \
    X(cuMemPoolSetAttribute, "cuMemPoolSetAttribute", 11020, -1, DRV)            \
    X(cuMemPoolTrimTo, "cuMemPoolTrimTo", 11020, -1, DRV)                        \
    X(cudaMemPoolSetAttribute, "", 0, -1, RT)                                 \
    X(cudaMemPoolTrimTo, "", 0, -1, RT)                                       \
    X(cudaGraphAddMemAllocNode, "", 0, -1, RT)                                \
    X(cudaGraphAddMemFreeNode, "", 0, -1, RT)

enum vsp_hook_id {
#define VSP_X(sym, base, ver, ptds, kind) VSP_H_##sym,
    VSP_HOOK_LIST(VSP_X)
#undef VSP_X
    VSP_H_COUNT
};

/* The real function for a hook: the pointer the program would have called. Resolved through
 * dlsym(RTLD_NEXT) when no handle or cuGetProcAddress lookup has supplied it yet. NULL when
 * the library is not in the process. */
void *vsp_real_get(int id);

/* The real function for a hook called from return address ret: the definition the calling
 * object would have bound to (its own scope), else vsp_real_get(id). Cached; no lock; errno kept. */
void *vsp_real_for(int id, const void *ret);

/* The same through the thread's cache of its last answers by (id, return address), for the hooks'
 * hot path (issue 22: a hit is two compares, against the seqlocked binding table's ~50
 * instructions a call). Only answers from a binding (the caller's module's own scope) are kept:
 * they change only when a dlclose moves the generation, which the cached key includes. */
struct vsp_real_cache {
    const void *ret;
    void *fn;
    unsigned long key; /* generation << 8 | id; 0: empty */
};
/* Two-way: an entry is looked for in its slot and the slot's pair (slot ^ 1); a new one goes into
 * its slot, or into the pair where only the pair is free. A direct-mapped table of 8 missed on every call of a
 * runtime allocation pair: its four (hook, call site) keys, the runtime's two and the driver calls
 * nested in them, met in one slot often enough that the fake runtime's loop took the full lookup
 * (~140 instructions) once a pair. */
#define VSP_REAL_CACHE 16
extern __thread struct vsp_real_cache vsp_real_cache[VSP_REAL_CACHE] __attribute__((tls_model("initial-exec")));
extern unsigned long vsp_dl_gen;
static inline unsigned vsp_real_cache_slot(int id, const void *ret)
{
    const uintptr_t r = (uintptr_t)ret;
    return (unsigned)(r ^ r >> 5 ^ (unsigned)id * 3u) & (VSP_REAL_CACHE - 1);
}
/* An entry's fn if it is (key, ret): fn is loaded between two reads of the key and ret, so that a
 * signal handler of this thread that rewrote the entry meanwhile (a miss of its own into the same
 * slot) is seen as a miss rather than giving another call's function. (Compiler barriers: only
 * this thread writes its cache.) */
static inline void *vsp_real_cache_hit(const struct vsp_real_cache *c, unsigned long key, const void *ret)
{
    if (c->key != key || c->ret != ret)
        return NULL;
    __asm__ volatile("" ::: "memory");
    void *fn = c->fn;
    __asm__ volatile("" ::: "memory");
    return c->key == key && c->ret == ret ? fn : NULL;
}
static inline void *vsp_real_for_cached(int id, const void *ret)
{
    /* acquire: pairs with dlclose's release bump, as in vsp_real_for */
    unsigned long key = __atomic_load_n(&vsp_dl_gen, __ATOMIC_ACQUIRE) << 8 | (unsigned)id;
    void *fn = vsp_real_cache_hit(&vsp_real_cache[vsp_real_cache_slot(id, ret)], key, ret);
    if (__builtin_expect(fn != NULL, 1))
        return fn;
    fn = vsp_real_cache_hit(&vsp_real_cache[vsp_real_cache_slot(id, ret) ^ 1], key, ret);
    if (__builtin_expect(fn != NULL, 1))
        return fn;
    return vsp_real_for(id, ret);
}

/* Forget driver helper pointers whose library was unloaded (after a dlclose). */
void vsp_helpers_forget(void);
/* A runtime hook is calling real_fn: the calling thread's last runtime (its own TLS word), and the
 * process's first (written once), answer cudaMemGetInfo when no driver does. Every runtime hook
 * calls it: a store to the thread's own word and one load. */
void vsp_note_runtime(void *real_fn);

/* The hooks' addresses by id: each file's own (NULL elsewhere). */
extern void *const vsp_runtime_hooks[VSP_H_COUNT];
extern void *const vsp_driver_hooks[VSP_H_COUNT];
extern void *const vsp_lookup_hooks[VSP_H_COUNT];

/* Substitute a hook for a real pointer found by exported symbol name (dlsym on a handle). */
void *vsp_wrap_by_symbol(const char *name, void *real);
/* ... or by cuGetProcAddress naming (base name, cudaVersion, flags). `owner` is the lookup function
 * that answered: when its answer is a pointer into the shim (a library handing out its exported,
 * hence interposed, symbols), the real definition is taken from the owner's library. */
void *vsp_wrap_by_gpa(const char *name, int version, unsigned long long flags, void *real, void *owner);

/* Export <sym> as an alias of the hidden hook vsp_h_<sym>. */
#define VSP_EXPORT_HOOK(sym) \
    extern __typeof(vsp_h_##sym) sym __attribute__((alias("vsp_h_" #sym), visibility("default")))

#endif
