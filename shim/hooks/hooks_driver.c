/* CUDA driver hooks (libcuda.so.1 entry points), reached by direct linking, by dlsym on a libcuda
 * handle, or through cuGetProcAddress (see hooks_dl.c). A driver call made by the runtime from
 * inside a runtime hook passes through unrecorded; one made by a statically linked runtime (nvcc's
 * default) or by the program itself is recorded under the driver name. Same contract as
 * hooks_runtime.c: thin translation, real result, errno and out-parameters untouched. */
#define _GNU_SOURCE
#include <cuda.h>
#include <errno.h>

#include "shim/record/core.h"
#include "shim/hooks/hooks.h"
#include "shim/inproc/pools.h"

#define OUT(r, pp) ((r) == CUDA_SUCCESS && (pp) ? (uint64_t)(uintptr_t) * (pp) : 0)

#define DRV_LOOKUP(sym)                                                     \
    __typeof(&vsp_h_##sym) real = (__typeof(&vsp_h_##sym))vsp_real_for_cached(VSP_H_##sym, __builtin_return_address(0)); \
    if (VSP_UNLIKELY(!real))                                                \
        return CUDA_ERROR_NOT_FOUND

#define DRV_ENTER()                                                         \
    struct vsp_hook h;                                                      \
    vsp_hook_enter(&h);                                                     \
    h.site = __builtin_return_address(0)

#define DRV_REAL(sym)                                                       \
    DRV_LOOKUP(sym);                                                        \
    DRV_ENTER()

/* The hot hooks (the runtime's allocations and frees reach them nested, one a call): a call
 * nested in this thread's hook goes straight to the real function, with no bracket (core.h,
 * vsp_hook_nested; issue 22). */
#define DRV_PASS_NESTED(...)                                                \
    do {                                                                    \
        if (vsp_hook_nested(__builtin_frame_address(0)))                    \
            return real(__VA_ARGS__);                                       \
    } while (0)

#define DRV_ALLOC(sym, ...)                                                 \
    VSP_HOOK_LEAVE_ALLOC(&h, .api = VSP_API_##sym, .result = (int32_t)r,    \
                         .oom = r == CUDA_ERROR_OUT_OF_MEMORY, __VA_ARGS__)

#define DRV_FREE_ENTERED(sym, cls, mem, p, stream)                          \
    DRV_ENTER();                                                            \
    struct vsp_free f;                                                      \
    vsp_free_begin(&h, &f, VSP_API_##sym, cls, mem, (uint64_t)(p), (uint64_t)(uintptr_t)(stream), \
                   __builtin_return_address(0))

#define DRV_FREE(sym, cls, mem, p, stream)                                  \
    DRV_LOOKUP(sym);                                                        \
    DRV_FREE_ENTERED(sym, cls, mem, p, stream)

/* cuInit records nothing: it is the driver's first call, where the trace is opened (a process that
 * sandboxes itself once CUDA is up may forbid opening files later). */
VSP_HIDDEN CUresult vsp_h_cuInit(unsigned int flags)
{
    DRV_REAL(cuInit);
    CUresult r = real(flags);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    DRV_LOOKUP(cuMemAlloc_v2);
    DRV_PASS_NESTED(dptr, bytesize);
    DRV_ENTER();
    CUresult r = real(dptr, bytesize);
    DRV_ALLOC(cuMemAlloc_v2, .memory = VSP_MEM_DEVICE, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, dptr), .size = bytesize);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t width, size_t height,
                                             unsigned int elementSize)
{
    DRV_REAL(cuMemAllocPitch_v2);
    CUresult r = real(dptr, pPitch, width, height, elementSize);
    uint64_t p = (r == CUDA_SUCCESS && pPitch) ? *pPitch : 0;
    DRV_ALLOC(cuMemAllocPitch_v2, .memory = VSP_MEM_DEVICE, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, dptr),
              .size = r == CUDA_SUCCESS ? p * height : (uint64_t)width * height, .aux = p, .flags = elementSize);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    DRV_REAL(cuMemAllocManaged);
    int deny = vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(dptr, bytesize, flags);
    DRV_ALLOC(cuMemAllocManaged, .denied = deny, .memory = VSP_MEM_MANAGED, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, dptr),
              .size = bytesize, .flags = flags);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    DRV_REAL(cuMemAllocHost_v2);
    int deny = vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(pp, bytesize);
    DRV_ALLOC(cuMemAllocHost_v2, .denied = deny, .memory = VSP_MEM_HOST_PINNED, .cls = VSP_CLASS_HOST, .ptr = OUT(r, pp),
              .size = bytesize);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags)
{
    DRV_REAL(cuMemHostAlloc);
    int deny = vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(pp, bytesize, flags);
    DRV_ALLOC(cuMemHostAlloc, .denied = deny, .memory = (flags & CU_MEMHOSTALLOC_DEVICEMAP) ? VSP_MEM_HOST_MAPPED : VSP_MEM_HOST_PINNED,
              .cls = VSP_CLASS_HOST, .ptr = OUT(r, pp), .size = bytesize, .flags = flags);
    return r;
}

/* The old ABIs: cuda.h maps these names to the _v2 ones, the driver still exports them. */
#undef cuMemAllocHost
#undef cuMemHostRegister

VSP_HIDDEN CUresult vsp_h_cuMemAllocHost(void **pp, unsigned int bytesize)
{
    DRV_REAL(cuMemAllocHost);
    int deny = vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(pp, bytesize);
    DRV_ALLOC(cuMemAllocHost, .denied = deny, .memory = VSP_MEM_HOST_PINNED, .cls = VSP_CLASS_HOST, .ptr = OUT(r, pp),
              .size = bytesize);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemHostRegister(void *p, size_t bytesize, unsigned int flags)
{
    DRV_REAL(cuMemHostRegister);
    int deny = vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(p, bytesize, flags);
    DRV_ALLOC(cuMemHostRegister, .denied = deny, .memory = VSP_MEM_HOST_REGISTERED, .cls = VSP_CLASS_REGISTERED,
              .ptr = (uint64_t)(uintptr_t)p, .size = bytesize, .flags = flags);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags)
{
    DRV_REAL(cuMemHostRegister_v2);
    int deny = vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(p, bytesize, flags);
    DRV_ALLOC(cuMemHostRegister_v2, .denied = deny, .memory = VSP_MEM_HOST_REGISTERED, .cls = VSP_CLASS_REGISTERED,
              .ptr = (uint64_t)(uintptr_t)p, .size = bytesize, .flags = flags);
    return r;
}

/* Stream-ordered allocations come from the device's current pool, or from the pool named: a
 * host-located one gives pinned host memory (host_pool), refused under VRAMSPY_ENFORCE. */
#define DRV_ASYNC(sym)                                                                         \
    VSP_HIDDEN CUresult vsp_h_##sym(CUdeviceptr *dptr, size_t bytesize, CUstream s)            \
    {                                                                                          \
        DRV_LOOKUP(sym);                                                                       \
        vsp_pools_used_async();                                                                \
        DRV_PASS_NESTED(dptr, bytesize, s);                                                    \
        DRV_ENTER();                                                                           \
        int host = vsp_current_pool_is_host();                                                 \
        int deny = host && vsp_deny_host(&h);                                                  \
        CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(dptr, bytesize, s);                \
        DRV_ALLOC(sym, .denied = deny, .memory = host ? VSP_MEM_HOST_POOL : VSP_MEM_DEVICE,    \
                  .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, dptr), .size = bytesize,              \
                  .stream = (uint64_t)(uintptr_t)s);                                           \
        return r;                                                                              \
    }
DRV_ASYNC(cuMemAllocAsync)
DRV_ASYNC(cuMemAllocAsync_ptsz)

#define DRV_POOL(sym)                                                                          \
    VSP_HIDDEN CUresult vsp_h_##sym(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s) \
    {                                                                                          \
        DRV_REAL(sym);                                                                         \
        int host = vsp_pool_is_host((uint64_t)(uintptr_t)pool);                                \
        int deny = host && vsp_deny_host(&h);                                                  \
        CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(dptr, bytesize, pool, s);          \
        DRV_ALLOC(sym, .denied = deny, .memory = host ? VSP_MEM_HOST_POOL : VSP_MEM_DEVICE,    \
                  .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, dptr), .size = bytesize,              \
                  .stream = (uint64_t)(uintptr_t)s, .aux = (uint64_t)(uintptr_t)pool);         \
        return r;                                                                              \
    }
DRV_POOL(cuMemAllocFromPoolAsync)
DRV_POOL(cuMemAllocFromPoolAsync_ptsz)

VSP_HIDDEN CUresult vsp_h_cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                      const CUmemAllocationProp *prop, unsigned long long flags)
{
    DRV_REAL(cuMemCreate);
    /* CUDA 12.2+ can create physical memory on the host (pinned host memory mapped into the
     * device's address space): host memory for the audit and for VRAMSPY_ENFORCE. */
    int host = prop && vsp_location_is_host(prop->location.type);
    int deny = host && vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(handle, size, prop, flags);
    DRV_ALLOC(cuMemCreate, .denied = deny, .memory = host ? VSP_MEM_HOST_PINNED : VSP_MEM_PHYSICAL,
              .cls = VSP_CLASS_PHYSICAL, .ptr = OUT(r, handle), .size = size, .flags = flags);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                   unsigned long long flags)
{
    DRV_REAL(cuMemMap);
    CUresult r = real(ptr, size, offset, handle, flags);
    DRV_ALLOC(cuMemMap, .op = VSP_OP_MAP, .memory = VSP_MEM_MAPPING, .cls = 0, .ptr = ptr, .size = size,
              .aux = handle, .flags = flags);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    DRV_REAL(cuMemUnmap);
    CUresult r = real(ptr, size);
    DRV_ALLOC(cuMemUnmap, .op = VSP_OP_UNMAP, .memory = VSP_MEM_MAPPING, .cls = 0, .ptr = ptr, .size = size);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemFree_v2(CUdeviceptr dptr)
{
    DRV_LOOKUP(cuMemFree_v2);
    DRV_PASS_NESTED(dptr);
    DRV_FREE_ENTERED(cuMemFree_v2, VSP_CLASS_DEVPTR, VSP_MEM_DEVICE, dptr, 0);
    CUresult r = real(dptr);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemFreeHost(void *p)
{
    DRV_FREE(cuMemFreeHost, VSP_CLASS_HOST, VSP_MEM_HOST_PINNED, (uintptr_t)p, 0);
    CUresult r = real(p);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemHostUnregister(void *p)
{
    DRV_FREE(cuMemHostUnregister, VSP_CLASS_REGISTERED, VSP_MEM_HOST_REGISTERED, (uintptr_t)p, 0);
    CUresult r = real(p);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemRelease(CUmemGenericAllocationHandle handle)
{
    DRV_FREE(cuMemRelease, VSP_CLASS_PHYSICAL, VSP_MEM_PHYSICAL, handle, 0);
    CUresult r = real(handle);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

#define DRV_FREE_ASYNC(sym)                                                  \
    VSP_HIDDEN CUresult vsp_h_##sym(CUdeviceptr dptr, CUstream s)            \
    {                                                                        \
        DRV_LOOKUP(sym);                                                     \
        DRV_PASS_NESTED(dptr, s);                                            \
        DRV_FREE_ENTERED(sym, VSP_CLASS_DEVPTR, VSP_MEM_DEVICE, dptr, s);    \
        CUresult r = real(dptr, s);                                          \
        vsp_hook_leave_free(&h, &f, (int32_t)r);                             \
        return r;                                                            \
    }
DRV_FREE_ASYNC(cuMemFreeAsync)
DRV_FREE_ASYNC(cuMemFreeAsync_ptsz)

/* ---- CUDA arrays: NVIDIA's runtime, static and shared, creates them through these ---- */

/* Bytes of one element of a format with its channels; in eighths of a byte, for block-compressed
 * formats (BC1/BC4: 4x4 pixels in 8 bytes) and 4:2:0 video formats (12 bits a pixel). 0: unknown. */
static uint64_t element_eighths(CUarray_format f, unsigned channels)
{
    unsigned per = 0;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: per = 1; break;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: per = 2; break;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: per = 4; break;
    case CU_AD_FORMAT_UNORM_INT8X1: case CU_AD_FORMAT_SNORM_INT8X1: return 8;
    case CU_AD_FORMAT_UNORM_INT8X2: case CU_AD_FORMAT_SNORM_INT8X2: case CU_AD_FORMAT_UNORM_INT16X1:
    case CU_AD_FORMAT_SNORM_INT16X1: return 16;
    case CU_AD_FORMAT_UNORM_INT8X4: case CU_AD_FORMAT_SNORM_INT8X4: case CU_AD_FORMAT_UNORM_INT16X2:
    case CU_AD_FORMAT_SNORM_INT16X2: case CU_AD_FORMAT_UNORM_INT_101010_2: return 32;
    case CU_AD_FORMAT_UNORM_INT16X4: case CU_AD_FORMAT_SNORM_INT16X4: return 64;
    case CU_AD_FORMAT_BC1_UNORM: case CU_AD_FORMAT_BC1_UNORM_SRGB: case CU_AD_FORMAT_BC4_UNORM:
    case CU_AD_FORMAT_BC4_SNORM: return 4;
    case CU_AD_FORMAT_BC2_UNORM: case CU_AD_FORMAT_BC2_UNORM_SRGB: case CU_AD_FORMAT_BC3_UNORM:
    case CU_AD_FORMAT_BC3_UNORM_SRGB: case CU_AD_FORMAT_BC5_UNORM: case CU_AD_FORMAT_BC5_SNORM:
    case CU_AD_FORMAT_BC6H_UF16: case CU_AD_FORMAT_BC6H_SF16: case CU_AD_FORMAT_BC7_UNORM:
    case CU_AD_FORMAT_BC7_UNORM_SRGB: return 8;
    case CU_AD_FORMAT_NV12: return 12;
    case CU_AD_FORMAT_P010: case CU_AD_FORMAT_P016: return 24;
    default: return 0;
    }
    return (uint64_t)per * 8 * (channels ? channels : 1);
}

/* Bytes of an array (levels 0) or a mipmapped array (levels >= 1: each level halves width,
 * height and depth, except the layer/face count of a layered or cubemap array). An estimate of
 * what the driver holds: it pads rows and aligns, so the real footprint is somewhat larger. */
static uint64_t array_bytes(const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned levels)
{
    if (!d)
        return 0;
    uint64_t eighths = element_eighths(d->Format, d->NumChannels), total = 0;
    int depth_shrinks = !(d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP));
    for (unsigned l = 0; l < (levels ? levels : 1) && l < 64; l++) {
        uint64_t w = d->Width >> l, h = d->Height >> l, dd = depth_shrinks ? d->Depth >> l : d->Depth;
        w = w ? w : 1;
        h = d->Height ? (h ? h : 1) : 1;
        dd = d->Depth ? (dd ? dd : 1) : 1;
        total += (w * h * dd * eighths + 7) / 8;
    }
    return total;
}

VSP_HIDDEN CUresult vsp_h_cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    DRV_REAL(cuArrayCreate_v2);
    CUresult r = real(pHandle, desc);
    CUDA_ARRAY3D_DESCRIPTOR d3 = {0};
    if (desc) {
        d3.Width = desc->Width;
        d3.Height = desc->Height;
        d3.Format = desc->Format;
        d3.NumChannels = desc->NumChannels;
    }
    DRV_ALLOC(cuArrayCreate_v2, .memory = VSP_MEM_ARRAY, .cls = VSP_CLASS_ARRAY, .ptr = OUT(r, pHandle),
              .size = array_bytes(desc ? &d3 : NULL, 0));
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    DRV_REAL(cuArray3DCreate_v2);
    CUresult r = real(pHandle, desc);
    DRV_ALLOC(cuArray3DCreate_v2, .memory = VSP_MEM_ARRAY, .cls = VSP_CLASS_ARRAY, .ptr = OUT(r, pHandle),
              .size = array_bytes(desc, 0), .flags = desc ? desc->Flags : 0);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                                 unsigned int numMipmapLevels)
{
    DRV_REAL(cuMipmappedArrayCreate);
    CUresult r = real(pHandle, desc, numMipmapLevels);
    DRV_ALLOC(cuMipmappedArrayCreate, .memory = VSP_MEM_ARRAY, .cls = VSP_CLASS_MIPMAP, .ptr = OUT(r, pHandle),
              .size = array_bytes(desc, numMipmapLevels ? numMipmapLevels : 1), .flags = desc ? desc->Flags : 0,
              .aux = numMipmapLevels);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuArrayDestroy(CUarray hArray)
{
    DRV_FREE(cuArrayDestroy, VSP_CLASS_ARRAY, VSP_MEM_ARRAY, (uintptr_t)hArray, 0);
    CUresult r = real(hArray);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray)
{
    DRV_FREE(cuMipmappedArrayDestroy, VSP_CLASS_MIPMAP, VSP_MEM_ARRAY, (uintptr_t)hMipmappedArray, 0);
    CUresult r = real(hMipmappedArray);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

/* ---- memory pools: which are host-located, which is a device's current one (pools.c) ---- */

/* A refused pool call is recorded (memory host_pool, size 0, denied): the audit's host_fallback. */
#define DRV_POOL_DENIED(sym) DRV_ALLOC(sym, .denied = 1, .memory = VSP_MEM_HOST_POOL, .cls = 0)

VSP_HIDDEN CUresult vsp_h_cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    DRV_REAL(cuMemPoolCreate);
    int host = props && vsp_location_is_host(props->location.type);
    if (host && vsp_deny_host(&h)) {
        CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
        DRV_POOL_DENIED(cuMemPoolCreate);
        return r;
    }
    CUresult r = real(pool, props);
    if (r == CUDA_SUCCESS && pool)
        vsp_pool_note((uint64_t)(uintptr_t)*pool, host);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemPoolDestroy(CUmemoryPool pool)
{
    DRV_REAL(cuMemPoolDestroy);
    CUresult r = real(pool);
    if (r == CUDA_SUCCESS)
        vsp_pool_forget((uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    DRV_REAL(cuDeviceSetMemPool);
    if (vsp_pool_is_host((uint64_t)(uintptr_t)pool) && vsp_deny_host(&h)) {
        CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
        DRV_POOL_DENIED(cuDeviceSetMemPool);
        return r;
    }
    CUresult r = real(dev, pool);
    if (r == CUDA_SUCCESS)
        vsp_pool_set_current(dev, (uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemSetMemPool(CUmemLocation *loc, CUmemAllocationType type, CUmemoryPool pool)
{
    DRV_REAL(cuMemSetMemPool);
    int device = loc && loc->type == CU_MEM_LOCATION_TYPE_DEVICE;
    if (device && vsp_pool_is_host((uint64_t)(uintptr_t)pool) && vsp_deny_host(&h)) {
        CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
        DRV_POOL_DENIED(cuMemSetMemPool);
        return r;
    }
    CUresult r = real(loc, type, pool);
    if (r == CUDA_SUCCESS && device)
        vsp_pool_set_current(loc->id, (uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemGetDefaultMemPool(CUmemoryPool *pool, CUmemLocation *loc, CUmemAllocationType type)
{
    DRV_REAL(cuMemGetDefaultMemPool);
    CUresult r = real(pool, loc, type);
    if (r == CUDA_SUCCESS && pool && loc)
        vsp_pool_note((uint64_t)(uintptr_t)*pool, vsp_location_is_host(loc->type));
    vsp_hook_leave(&h);
    return r;
}

/* ---- graph memory nodes: recorded when the node is added (the memory is taken at launch) ---- */

VSP_HIDDEN CUresult vsp_h_cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph graph, const CUgraphNode *deps,
                                                 size_t ndeps, CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    DRV_REAL(cuGraphAddMemAllocNode);
    int host = p && vsp_location_is_host(p->poolProps.location.type);
    int deny = host && vsp_deny_host(&h);
    CUresult r = deny ? CUDA_ERROR_OUT_OF_MEMORY : real(node, graph, deps, ndeps, p);
    DRV_ALLOC(cuGraphAddMemAllocNode, .denied = deny, .graph = 1, .memory = host ? VSP_MEM_HOST_POOL : VSP_MEM_DEVICE,
              .cls = VSP_CLASS_DEVPTR, .ptr = r == CUDA_SUCCESS && p ? p->dptr : 0, .size = p ? p->bytesize : 0);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuGraphAddMemFreeNode(CUgraphNode *node, CUgraph graph, const CUgraphNode *deps,
                                                size_t ndeps, CUdeviceptr dptr)
{
    DRV_FREE(cuGraphAddMemFreeNode, VSP_CLASS_DEVPTR, VSP_MEM_DEVICE, dptr, 0);
    CUresult r = real(node, graph, deps, ndeps, dptr);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

/* ---- IPC: another process's device memory mapped here (memory kind imported) ---- */

VSP_HIDDEN CUresult vsp_h_cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int flags)
{
    DRV_REAL(cuIpcOpenMemHandle_v2);
    CUresult r = real(pdptr, handle, flags);
    uint64_t ptr = OUT(r, pdptr);
    DRV_ALLOC(cuIpcOpenMemHandle_v2, .memory = VSP_MEM_IMPORTED, .cls = VSP_CLASS_IMPORTED, .ptr = ptr,
              .size = ptr ? vsp_address_range_size(ptr) : 0, .flags = flags);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    DRV_FREE(cuIpcCloseMemHandle, VSP_CLASS_IMPORTED, VSP_MEM_IMPORTED, dptr, 0);
    CUresult r = real(dptr);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

/* ---- address ranges and device views of host memory: in the trace, never memory of their own ---- */

VSP_HIDDEN CUresult vsp_h_cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                              unsigned long long flags)
{
    DRV_REAL(cuMemAddressReserve);
    CUresult r = real(ptr, size, alignment, addr, flags);
    DRV_ALLOC(cuMemAddressReserve, .op = VSP_OP_RESERVE, .memory = VSP_MEM_MAPPING, .cls = 0, .ptr = OUT(r, ptr),
              .size = size, .flags = flags, .aux = addr);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    DRV_REAL(cuMemAddressFree);
    CUresult r = real(ptr, size);
    DRV_ALLOC(cuMemAddressFree, .op = VSP_OP_UNRESERVE, .memory = VSP_MEM_MAPPING, .cls = 0, .ptr = ptr, .size = size);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int flags)
{
    DRV_REAL(cuMemHostGetDevicePointer_v2);
    CUresult r = real(pdptr, p, flags);
    DRV_ALLOC(cuMemHostGetDevicePointer_v2, .op = VSP_OP_VIEW, .memory = VSP_MEM_HOST_MAPPED, .cls = 0,
              .ptr = OUT(r, pdptr), .aux = (uint64_t)(uintptr_t)p, .flags = flags);
    return r;
}

VSP_EXPORT_HOOK(cuMemAddressReserve);
VSP_EXPORT_HOOK(cuMemAddressFree);
VSP_EXPORT_HOOK(cuMemHostGetDevicePointer_v2);
/* ---- external memory and shareable handles: imported, never this process's own ---- */

VSP_HIDDEN CUresult vsp_h_cuImportExternalMemory(CUexternalMemory *ext, const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *desc)
{
    DRV_REAL(cuImportExternalMemory);
    CUresult r = real(ext, desc);
    DRV_ALLOC(cuImportExternalMemory, .memory = VSP_MEM_IMPORTED, .cls = VSP_CLASS_EXTERNAL, .ptr = OUT(r, ext),
              .size = desc ? desc->size : 0, .flags = desc ? desc->flags : 0, .aux = desc ? (uint64_t)desc->type : 0);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuExternalMemoryGetMappedBuffer(CUdeviceptr *dptr, CUexternalMemory ext,
                                                          const CUDA_EXTERNAL_MEMORY_BUFFER_DESC *desc)
{
    DRV_REAL(cuExternalMemoryGetMappedBuffer);
    CUresult r = real(dptr, ext, desc);
    DRV_ALLOC(cuExternalMemoryGetMappedBuffer, .memory = VSP_MEM_IMPORTED, .cls = VSP_CLASS_DEVPTR, .ptr = OUT(r, dptr),
              .size = desc ? desc->size : 0, .aux = (uint64_t)(uintptr_t)ext);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuDestroyExternalMemory(CUexternalMemory ext)
{
    DRV_FREE(cuDestroyExternalMemory, VSP_CLASS_EXTERNAL, VSP_MEM_IMPORTED, (uintptr_t)ext, 0);
    CUresult r = real(ext);
    vsp_hook_leave_free(&h, &f, (int32_t)r);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *os_handle,
                                                         CUmemAllocationHandleType type)
{
    DRV_REAL(cuMemImportFromShareableHandle);
    CUresult r = real(handle, os_handle, type);
    DRV_ALLOC(cuMemImportFromShareableHandle, .memory = VSP_MEM_IMPORTED, .cls = VSP_CLASS_PHYSICAL,
              .ptr = OUT(r, handle), .flags = type, .aux = (uint64_t)(uintptr_t)os_handle);
    return r;
}

VSP_EXPORT_HOOK(cuImportExternalMemory);
VSP_EXPORT_HOOK(cuExternalMemoryGetMappedBuffer);
VSP_EXPORT_HOOK(cuDestroyExternalMemory);
VSP_EXPORT_HOOK(cuMemImportFromShareableHandle);
VSP_EXPORT_HOOK(cuGraphAddMemAllocNode);
VSP_EXPORT_HOOK(cuGraphAddMemFreeNode);
VSP_EXPORT_HOOK(cuIpcOpenMemHandle_v2);
VSP_EXPORT_HOOK(cuIpcCloseMemHandle);
/* Attribute changes and trims change what a pool holds: the pool is sampled from then on. */
VSP_HIDDEN CUresult vsp_h_cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    DRV_REAL(cuMemPoolSetAttribute);
    CUresult r = real(pool, attr, value);
    if (r == CUDA_SUCCESS)
        vsp_pool_note_used((uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_HIDDEN CUresult vsp_h_cuMemPoolTrimTo(CUmemoryPool pool, size_t keep)
{
    DRV_REAL(cuMemPoolTrimTo);
    CUresult r = real(pool, keep);
    if (r == CUDA_SUCCESS)
        vsp_pool_note_used((uint64_t)(uintptr_t)pool);
    vsp_hook_leave(&h);
    return r;
}

VSP_EXPORT_HOOK(cuMemPoolSetAttribute);
VSP_EXPORT_HOOK(cuMemPoolTrimTo);
VSP_EXPORT_HOOK(cuMemPoolCreate);
VSP_EXPORT_HOOK(cuMemPoolDestroy);
VSP_EXPORT_HOOK(cuDeviceSetMemPool);
VSP_EXPORT_HOOK(cuMemSetMemPool);
VSP_EXPORT_HOOK(cuMemGetDefaultMemPool);
VSP_EXPORT_HOOK(cuArrayCreate_v2);
VSP_EXPORT_HOOK(cuArray3DCreate_v2);
VSP_EXPORT_HOOK(cuArrayDestroy);
VSP_EXPORT_HOOK(cuMipmappedArrayCreate);
VSP_EXPORT_HOOK(cuMipmappedArrayDestroy);
VSP_EXPORT_HOOK(cuInit);
VSP_EXPORT_HOOK(cuMemAlloc_v2);
VSP_EXPORT_HOOK(cuMemAllocPitch_v2);
VSP_EXPORT_HOOK(cuMemAllocManaged);
VSP_EXPORT_HOOK(cuMemAllocHost_v2);
VSP_EXPORT_HOOK(cuMemHostAlloc);
VSP_EXPORT_HOOK(cuMemHostRegister_v2);
VSP_EXPORT_HOOK(cuMemHostRegister);
VSP_EXPORT_HOOK(cuMemAllocHost);
VSP_EXPORT_HOOK(cuMemAllocAsync);
VSP_EXPORT_HOOK(cuMemAllocAsync_ptsz);
VSP_EXPORT_HOOK(cuMemAllocFromPoolAsync);
VSP_EXPORT_HOOK(cuMemAllocFromPoolAsync_ptsz);
VSP_EXPORT_HOOK(cuMemCreate);
VSP_EXPORT_HOOK(cuMemMap);
VSP_EXPORT_HOOK(cuMemUnmap);
VSP_EXPORT_HOOK(cuMemFree_v2);
VSP_EXPORT_HOOK(cuMemFreeHost);
VSP_EXPORT_HOOK(cuMemHostUnregister);
VSP_EXPORT_HOOK(cuMemRelease);
VSP_EXPORT_HOOK(cuMemFreeAsync);
VSP_EXPORT_HOOK(cuMemFreeAsync_ptsz);

/* This file's hooks by id (hooks.h); the other files' ids are NULL here. */
#define VSP_X_DRV(id, fn) [id] = (void *)fn,
#define VSP_X_RT(id, fn)
#define VSP_X_LK(id, fn)
/* (names pasted before they are passed on: cuda.h defines cuGetProcAddress as a macro) */
#define VSP_X(sym, base, ver, ptds, kind) VSP_X_##kind(VSP_H_##sym, vsp_h_##sym)
void *const vsp_driver_hooks[VSP_H_COUNT] = {VSP_HOOK_LIST(VSP_X)};
#undef VSP_X
