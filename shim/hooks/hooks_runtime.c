/* CUDA runtime hooks (libcudart.so.13 exports). Each hook only translates its call into a
 * vsp_call for the core: the real call first, then the record (allocations), or the record
 * reserved first and committed after (frees). The driver calls the runtime makes underneath
 * pass through unrecorded (vsp_tls.depth), so one allocation is one event under the name the
 * program called. Return values, out-parameters and errno are the real call's.
 * Must never: record anything itself, or call the real function twice. */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <errno.h>

#include "shim/record/core.h"
#include "shim/hooks/hooks.h"
#include "shim/inproc/pools.h"

#define OUT(r, pp) ((r) == cudaSuccess && (pp) ? (uint64_t)(uintptr_t) * (pp) : 0)

/* Find the real function: the one the caller would have bound to (hooks_dl.c). Without a runtime
 * in the caller's scope or the process there is nothing to call. */
#define RT_REAL(sym)                                                        \
    __typeof(&vsp_h_##sym) real = (__typeof(&vsp_h_##sym))vsp_real_for_cached(VSP_H_##sym, __builtin_return_address(0)); \
    if (VSP_UNLIKELY(!real))                                                \
        return cudaErrorInsufficientDriver;                                 \
    vsp_note_runtime((void *)real);                                         \
    struct vsp_hook h;                                                      \
    vsp_hook_enter(&h);                                                     \
    h.site = __builtin_return_address(0)

#define RT_ALLOC(sym, ...)                                                  \
    VSP_HOOK_LEAVE_ALLOC(&h, .api = VSP_API_##sym, .result = r,             \
                         .oom = r == cudaErrorMemoryAllocation, __VA_ARGS__)

#define RT_FREE(sym, cls, mem, p, stream)                                   \
    RT_REAL(sym);                                                           \
    struct vsp_free f;                                                      \
    vsp_free_begin(&h, &f, VSP_API_##sym, cls, mem, (uint64_t)(uintptr_t)(p), (uint64_t)(uintptr_t)(stream), \
                   __builtin_return_address(0))

static uint64_t element_bytes(const struct cudaChannelFormatDesc *d)
{
    if (!d)
        return 0;
    int bits = d->x + d->y + d->z + d->w;
    return bits > 0 ? (uint64_t)bits / 8 : 0;
}

static uint64_t at_least_1(size_t v)
{
    return v ? v : 1;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMalloc(void **devPtr, size_t size)
{
    RT_REAL(cudaMalloc);
    cudaError_t r = real(devPtr, size);
    RT_ALLOC(cudaMalloc, .memory = VSP_MEM_DEVICE, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, devPtr), .size = size);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    RT_REAL(cudaMallocManaged);
    int deny = vsp_deny_host(&h);
    cudaError_t r = deny ? cudaErrorMemoryAllocation : real(devPtr, size, flags);
    RT_ALLOC(cudaMallocManaged, .denied = deny, .memory = VSP_MEM_MANAGED, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, devPtr),
             .size = size, .flags = flags);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMallocHost(void **ptr, size_t size)
{
    RT_REAL(cudaMallocHost);
    int deny = vsp_deny_host(&h);
    cudaError_t r = deny ? cudaErrorMemoryAllocation : real(ptr, size);
    RT_ALLOC(cudaMallocHost, .denied = deny, .memory = VSP_MEM_HOST_PINNED, .cls = VSP_CLASS_HOST, .ptr = OUT(r, ptr), .size = size);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    RT_REAL(cudaHostAlloc);
    int deny = vsp_deny_host(&h);
    cudaError_t r = deny ? cudaErrorMemoryAllocation : real(pHost, size, flags);
    RT_ALLOC(cudaHostAlloc, .denied = deny, .memory = (flags & cudaHostAllocMapped) ? VSP_MEM_HOST_MAPPED : VSP_MEM_HOST_PINNED,
             .cls = VSP_CLASS_HOST, .ptr = OUT(r, pHost), .size = size, .flags = flags);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    RT_REAL(cudaMallocPitch);
    cudaError_t r = real(devPtr, pitch, width, height);
    uint64_t p = (r == cudaSuccess && pitch) ? *pitch : 0;
    RT_ALLOC(cudaMallocPitch, .memory = VSP_MEM_DEVICE, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, devPtr),
             .size = r == cudaSuccess ? p * height : (uint64_t)width * height, .aux = p);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMalloc3D(struct cudaPitchedPtr *pp, struct cudaExtent e)
{
    RT_REAL(cudaMalloc3D);
    cudaError_t r = real(pp, e);
    uint64_t pitch = (r == cudaSuccess && pp) ? pp->pitch : e.width;
    RT_ALLOC(cudaMalloc3D, .memory = VSP_MEM_DEVICE, .cls = VSP_CLASS_DEVPTR,
             .ptr = (r == cudaSuccess && pp) ? (uint64_t)(uintptr_t)pp->ptr : 0,
             .size = pitch * at_least_1(e.height) * at_least_1(e.depth), .aux = pitch);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMallocArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                             size_t width, size_t height, unsigned int flags)
{
    RT_REAL(cudaMallocArray);
    cudaError_t r = real(array, desc, width, height, flags);
    RT_ALLOC(cudaMallocArray, .memory = VSP_MEM_ARRAY, .cls = VSP_CLASS_ARRAY, .ptr = OUT(r, array),
             .size = element_bytes(desc) * at_least_1(width) * at_least_1(height), .flags = flags);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMalloc3DArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                               struct cudaExtent e, unsigned int flags)
{
    RT_REAL(cudaMalloc3DArray);
    cudaError_t r = real(array, desc, e, flags);
    RT_ALLOC(cudaMalloc3DArray, .memory = VSP_MEM_ARRAY, .cls = VSP_CLASS_ARRAY, .ptr = OUT(r, array),
             .size = element_bytes(desc) * at_least_1(e.width) * at_least_1(e.height) * at_least_1(e.depth),
             .flags = flags);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMallocMipmappedArray(cudaMipmappedArray_t *m, const struct cudaChannelFormatDesc *desc,
                                                      struct cudaExtent e, unsigned int numLevels, unsigned int flags)
{
    RT_REAL(cudaMallocMipmappedArray);
    cudaError_t r = real(m, desc, e, numLevels, flags);
    uint64_t bytes = 0, w = e.width, hh = e.height, d = e.depth;
    for (unsigned l = 0; l < numLevels && l < 64; l++) {
        bytes += element_bytes(desc) * at_least_1(w) * at_least_1(hh) * at_least_1(d);
        w = w > 1 ? w / 2 : w;
        hh = hh > 1 ? hh / 2 : hh;
        d = d > 1 ? d / 2 : d;
    }
    RT_ALLOC(cudaMallocMipmappedArray, .memory = VSP_MEM_ARRAY, .cls = VSP_CLASS_MIPMAP, .ptr = OUT(r, m),
             .size = bytes, .flags = flags, .aux = numLevels);
    return r;
}

#define RT_ASYNC(sym)                                                                          \
    VSP_HIDDEN cudaError_t vsp_h_##sym(void **devPtr, size_t size, cudaStream_t s)             \
    {                                                                                          \
        RT_REAL(sym);                                                                          \
        vsp_pools_used_async();                                                                \
        int host = vsp_current_pool_is_host(); /* a host-located current pool: host memory */  \
        int deny = host && vsp_deny_host(&h);                                                  \
        cudaError_t r = deny ? cudaErrorMemoryAllocation : real(devPtr, size, s);              \
        RT_ALLOC(sym, .denied = deny, .memory = host ? VSP_MEM_HOST_POOL : VSP_MEM_DEVICE,     \
                 .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, devPtr), .size = size,                 \
                 .stream = (uint64_t)(uintptr_t)s);                                            \
        return r;                                                                              \
    }
RT_ASYNC(cudaMallocAsync)
RT_ASYNC(cudaMallocAsync_ptsz)

#define RT_POOL(sym)                                                                           \
    VSP_HIDDEN cudaError_t vsp_h_##sym(void **devPtr, size_t size, cudaMemPool_t pool, cudaStream_t s) \
    {                                                                                          \
        RT_REAL(sym);                                                                          \
        int host = vsp_pool_is_host((uint64_t)(uintptr_t)pool);                                \
        int deny = host && vsp_deny_host(&h);                                                  \
        cudaError_t r = deny ? cudaErrorMemoryAllocation : real(devPtr, size, pool, s);        \
        RT_ALLOC(sym, .denied = deny, .memory = host ? VSP_MEM_HOST_POOL : VSP_MEM_DEVICE,     \
                 .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, devPtr), .size = size,                 \
                 .stream = (uint64_t)(uintptr_t)s, .aux = (uint64_t)(uintptr_t)pool);          \
        return r;                                                                              \
    }
RT_POOL(cudaMallocFromPoolAsync)
RT_POOL(cudaMallocFromPoolAsync_ptsz)

VSP_HIDDEN cudaError_t vsp_h_cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    RT_REAL(cudaHostRegister);
    int deny = vsp_deny_host(&h);
    cudaError_t r = deny ? cudaErrorMemoryAllocation : real(ptr, size, flags);
    RT_ALLOC(cudaHostRegister, .denied = deny, .memory = VSP_MEM_HOST_REGISTERED, .cls = VSP_CLASS_REGISTERED,
             .ptr = (uint64_t)(uintptr_t)ptr, .size = size, .flags = flags);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaFree(void *devPtr)
{
    RT_FREE(cudaFree, VSP_CLASS_DEVPTR, VSP_MEM_DEVICE, devPtr, 0);
    cudaError_t r = real(devPtr);
    vsp_hook_leave_free(&h, &f, r);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaFreeHost(void *ptr)
{
    RT_FREE(cudaFreeHost, VSP_CLASS_HOST, VSP_MEM_HOST_PINNED, ptr, 0);
    cudaError_t r = real(ptr);
    vsp_hook_leave_free(&h, &f, r);
    return r;
}

#define RT_FREE_ASYNC(sym)                                                   \
    VSP_HIDDEN cudaError_t vsp_h_##sym(void *devPtr, cudaStream_t s)         \
    {                                                                        \
        RT_FREE(sym, VSP_CLASS_DEVPTR, VSP_MEM_DEVICE, devPtr, s);           \
        cudaError_t r = real(devPtr, s);                                     \
        vsp_hook_leave_free(&h, &f, r);                                      \
        return r;                                                            \
    }
RT_FREE_ASYNC(cudaFreeAsync)
RT_FREE_ASYNC(cudaFreeAsync_ptsz)

VSP_HIDDEN cudaError_t vsp_h_cudaFreeArray(cudaArray_t array)
{
    RT_FREE(cudaFreeArray, VSP_CLASS_ARRAY, VSP_MEM_ARRAY, array, 0);
    cudaError_t r = real(array);
    vsp_hook_leave_free(&h, &f, r);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaFreeMipmappedArray(cudaMipmappedArray_t m)
{
    RT_FREE(cudaFreeMipmappedArray, VSP_CLASS_MIPMAP, VSP_MEM_ARRAY, m, 0);
    cudaError_t r = real(m);
    vsp_hook_leave_free(&h, &f, r);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaHostUnregister(void *ptr)
{
    RT_FREE(cudaHostUnregister, VSP_CLASS_REGISTERED, VSP_MEM_HOST_REGISTERED, ptr, 0);
    cudaError_t r = real(ptr);
    vsp_hook_leave_free(&h, &f, r);
    return r;
}

/* Pools through the runtime: the driver calls it makes underneath keep the pool table; these
 * refuse a host-located pool under VRAMSPY_ENFORCE before the runtime is asked. */
#define RT_POOL_DENIED(sym) RT_ALLOC(sym, .denied = 1, .memory = VSP_MEM_HOST_POOL, .cls = 0)
VSP_HIDDEN cudaError_t vsp_h_cudaMemPoolCreate(cudaMemPool_t *pool, const struct cudaMemPoolProps *props)
{
    RT_REAL(cudaMemPoolCreate);
    if (props && vsp_location_is_host(props->location.type) && vsp_deny_host(&h)) {
        cudaError_t r = cudaErrorMemoryAllocation;
        RT_POOL_DENIED(cudaMemPoolCreate);
        return r;
    }
    cudaError_t r = real(pool, props);
    if (r == cudaSuccess && pool && props)
        vsp_pool_note((uint64_t)(uintptr_t)*pool, vsp_location_is_host(props->location.type));
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMemPoolDestroy(cudaMemPool_t pool)
{
    RT_REAL(cudaMemPoolDestroy);
    cudaError_t r = real(pool);
    if (r == cudaSuccess)
        vsp_pool_forget((uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaDeviceSetMemPool(int device, cudaMemPool_t pool)
{
    RT_REAL(cudaDeviceSetMemPool);
    if (vsp_pool_is_host((uint64_t)(uintptr_t)pool) && vsp_deny_host(&h)) {
        cudaError_t r = cudaErrorMemoryAllocation;
        RT_POOL_DENIED(cudaDeviceSetMemPool);
        return r;
    }
    cudaError_t r = real(device, pool);
    if (r == cudaSuccess)
        vsp_pool_set_current(device, (uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags)
{
    RT_REAL(cudaHostGetDevicePointer);
    cudaError_t r = real(pDevice, pHost, flags);
    RT_ALLOC(cudaHostGetDevicePointer, .op = VSP_OP_VIEW, .memory = VSP_MEM_HOST_MAPPED, .cls = 0,
             .ptr = OUT(r, pDevice), .aux = (uint64_t)(uintptr_t)pHost, .flags = flags);
    return r;
}

VSP_EXPORT_HOOK(cudaHostGetDevicePointer);
VSP_HIDDEN cudaError_t vsp_h_cudaMemPoolSetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr, void *value)
{
    RT_REAL(cudaMemPoolSetAttribute);
    cudaError_t r = real(pool, attr, value);
    if (r == cudaSuccess)
        vsp_pool_note_used((uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep)
{
    RT_REAL(cudaMemPoolTrimTo);
    cudaError_t r = real(pool, keep);
    if (r == cudaSuccess)
        vsp_pool_note_used((uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

/* Graph memory nodes through the runtime: one event under the runtime name (the driver node call
 * underneath passes through). */
VSP_HIDDEN cudaError_t vsp_h_cudaGraphAddMemAllocNode(cudaGraphNode_t *node, cudaGraph_t graph,
                                                      const cudaGraphNode_t *deps, size_t ndeps,
                                                      struct cudaMemAllocNodeParams *p)
{
    RT_REAL(cudaGraphAddMemAllocNode);
    int host = p && vsp_location_is_host(p->poolProps.location.type);
    int deny = host && vsp_deny_host(&h);
    cudaError_t r = deny ? cudaErrorMemoryAllocation : real(node, graph, deps, ndeps, p);
    RT_ALLOC(cudaGraphAddMemAllocNode, .denied = deny, .graph = 1, .memory = host ? VSP_MEM_HOST_POOL : VSP_MEM_DEVICE,
             .cls = VSP_CLASS_DEVPTR, .ptr = r == cudaSuccess && p ? (uint64_t)(uintptr_t)p->dptr : 0,
             .size = p ? p->bytesize : 0);
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaGraphAddMemFreeNode(cudaGraphNode_t *node, cudaGraph_t graph,
                                                     const cudaGraphNode_t *deps, size_t ndeps, void *dptr)
{
    RT_FREE(cudaGraphAddMemFreeNode, VSP_CLASS_DEVPTR, VSP_MEM_DEVICE, dptr, 0);
    cudaError_t r = real(node, graph, deps, ndeps, dptr);
    vsp_hook_leave_free(&h, &f, r);
    return r;
}

VSP_EXPORT_HOOK(cudaMemPoolSetAttribute);
VSP_EXPORT_HOOK(cudaMemPoolTrimTo);
VSP_EXPORT_HOOK(cudaGraphAddMemAllocNode);
VSP_EXPORT_HOOK(cudaGraphAddMemFreeNode);
VSP_EXPORT_HOOK(cudaMemPoolCreate);
VSP_EXPORT_HOOK(cudaMemPoolDestroy);
VSP_EXPORT_HOOK(cudaDeviceSetMemPool);
VSP_EXPORT_HOOK(cudaMalloc);
VSP_EXPORT_HOOK(cudaMallocManaged);
VSP_EXPORT_HOOK(cudaMallocHost);
VSP_EXPORT_HOOK(cudaHostAlloc);
VSP_EXPORT_HOOK(cudaMallocPitch);
VSP_EXPORT_HOOK(cudaMalloc3D);
VSP_EXPORT_HOOK(cudaMallocArray);
VSP_EXPORT_HOOK(cudaMalloc3DArray);
VSP_EXPORT_HOOK(cudaMallocMipmappedArray);
VSP_EXPORT_HOOK(cudaMallocAsync);
VSP_EXPORT_HOOK(cudaMallocAsync_ptsz);
VSP_EXPORT_HOOK(cudaMallocFromPoolAsync);
VSP_EXPORT_HOOK(cudaMallocFromPoolAsync_ptsz);
VSP_EXPORT_HOOK(cudaHostRegister);
VSP_EXPORT_HOOK(cudaFree);
VSP_EXPORT_HOOK(cudaFreeHost);
VSP_EXPORT_HOOK(cudaFreeAsync);
VSP_EXPORT_HOOK(cudaFreeAsync_ptsz);
VSP_EXPORT_HOOK(cudaFreeArray);
VSP_EXPORT_HOOK(cudaFreeMipmappedArray);
VSP_EXPORT_HOOK(cudaHostUnregister);

/* This file's hooks by id (hooks.h); the other files' ids are NULL here. */
#define VSP_X_RT(id, fn) [id] = (void *)fn,
#define VSP_X_DRV(id, fn)
#define VSP_X_LK(id, fn)
/* (names pasted before they are passed on: cuda.h defines cuGetProcAddress as a macro) */
#define VSP_X(sym, base, ver, ptds, kind) VSP_X_##kind(VSP_H_##sym, vsp_h_##sym)
void *const vsp_runtime_hooks[VSP_H_COUNT] = {VSP_HOOK_LIST(VSP_X)};
#undef VSP_X
