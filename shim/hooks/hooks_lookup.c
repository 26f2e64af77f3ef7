/* Lookup hooks: cuGetProcAddress / cuGetProcAddress_v2 (the driver's own lookup, which CUDA 13's
 * runtime uses for every driver entry point after the first) and cudaGetDriverEntryPoint* (the
 * runtime's door to driver pointers). Each calls the real lookup and, when it succeeded, hands out
 * the hook in place of a real allocation function (hooks_dl.c decides which, by name, version and
 * per-thread-stream flag). Result codes and status out-parameters are the real ones.
 * The process's first lookup opens the trace (vsp_cuda_contact).
 * Must never: fail a lookup the real function answered, or record anything. */
#define _GNU_SOURCE
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <errno.h>

#include "shim/record/core.h"
#include "shim/hooks/hooks.h"

/* ---- cuGetProcAddress: the driver's own lookup ---- */

typedef CUresult (*gpa_v2_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
typedef CUresult (*gpa_legacy_fn)(const char *, void **, int, cuuint64_t);

VSP_HIDDEN CUresult vsp_h_cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                              cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
    int saved = errno;
    vsp_init();
    gpa_v2_fn real = (gpa_v2_fn)vsp_real_for(VSP_H_cuGetProcAddress_v2, __builtin_return_address(0));
    if (!real)
        return CUDA_ERROR_NOT_FOUND;
    errno = saved;
    CUresult r = real(symbol, pfn, cudaVersion, flags, status);
    saved = errno;
    vsp_cuda_contact(); /* the runtime's first CUDA call goes through here */
    if (r == CUDA_SUCCESS && pfn && *pfn)
        *pfn = vsp_wrap_by_gpa(symbol, cudaVersion, flags, *pfn, (void *)real);
    errno = saved;
    return r;
}
VSP_EXPORT_HOOK(cuGetProcAddress_v2);

VSP_HIDDEN CUresult vsp_h_cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    int saved = errno;
    vsp_init();
    gpa_legacy_fn real = (gpa_legacy_fn)vsp_real_for(VSP_H_cuGetProcAddress, __builtin_return_address(0));
    if (!real)
        return CUDA_ERROR_NOT_FOUND;
    errno = saved;
    CUresult r = real(symbol, pfn, cudaVersion, flags);
    saved = errno;
    vsp_cuda_contact();
    if (r == CUDA_SUCCESS && pfn && *pfn)
        *pfn = vsp_wrap_by_gpa(symbol, cudaVersion, flags, *pfn, (void *)real);
    errno = saved;
    return r;
}
/* cuda.h #defines cuGetProcAddress to cuGetProcAddress_v2; the exported legacy symbol is the
 * plain name with the 4-argument ABI. */
extern __typeof(vsp_h_cuGetProcAddress) vsp_export_cuGetProcAddress
    __asm__("cuGetProcAddress") __attribute__((alias("vsp_h_cuGetProcAddress"), visibility("default")));

/* ---- cudaGetDriverEntryPoint*: the runtime's door to driver pointers ---- */

typedef cudaError_t (*gdep_fn)(const char *, void **, unsigned long long, enum cudaDriverEntryPointQueryResult *);
typedef cudaError_t (*gdepv_fn)(const char *, void **, unsigned int, unsigned long long,
                                enum cudaDriverEntryPointQueryResult *);

static cudaError_t gdep(int id, const void *ret, const char *symbol, void **funcPtr, unsigned long long flags,
                        enum cudaDriverEntryPointQueryResult *st)
{
    int saved = errno;
    vsp_init();
    gdep_fn real = (gdep_fn)vsp_real_for(id, ret);
    if (!real)
        return cudaErrorInsufficientDriver;
    errno = saved;
    cudaError_t r = real(symbol, funcPtr, flags, st);
    saved = errno;
    vsp_cuda_contact();
    /* The runtime answers with the ABI of its own version (CUDA 13 here: every _v2). */
    if (r == cudaSuccess && funcPtr && *funcPtr)
        *funcPtr = vsp_wrap_by_gpa(symbol, CUDART_VERSION, flags, *funcPtr, (void *)real);
    errno = saved;
    return r;
}

static cudaError_t gdepv(int id, const void *ret, const char *symbol, void **funcPtr, unsigned int ver,
                         unsigned long long flags, enum cudaDriverEntryPointQueryResult *st)
{
    int saved = errno;
    vsp_init();
    gdepv_fn real = (gdepv_fn)vsp_real_for(id, ret);
    if (!real)
        return cudaErrorInsufficientDriver;
    errno = saved;
    cudaError_t r = real(symbol, funcPtr, ver, flags, st);
    saved = errno;
    vsp_cuda_contact();
    if (r == cudaSuccess && funcPtr && *funcPtr)
        *funcPtr = vsp_wrap_by_gpa(symbol, (int)ver, flags, *funcPtr, (void *)real);
    errno = saved;
    return r;
}

VSP_HIDDEN cudaError_t vsp_h_cudaGetDriverEntryPoint(const char *s, void **f, unsigned long long fl,
                                                     enum cudaDriverEntryPointQueryResult *st)
{
    return gdep(VSP_H_cudaGetDriverEntryPoint, __builtin_return_address(0), s, f, fl, st);
}
VSP_HIDDEN cudaError_t vsp_h_cudaGetDriverEntryPoint_ptsz(const char *s, void **f, unsigned long long fl,
                                                          enum cudaDriverEntryPointQueryResult *st)
{
    return gdep(VSP_H_cudaGetDriverEntryPoint_ptsz, __builtin_return_address(0), s, f, fl, st);
}
VSP_HIDDEN cudaError_t vsp_h_cudaGetDriverEntryPointByVersion(const char *s, void **f, unsigned int v,
                                                              unsigned long long fl,
                                                              enum cudaDriverEntryPointQueryResult *st)
{
    return gdepv(VSP_H_cudaGetDriverEntryPointByVersion, __builtin_return_address(0), s, f, v, fl, st);
}
VSP_HIDDEN cudaError_t vsp_h_cudaGetDriverEntryPointByVersion_ptsz(const char *s, void **f, unsigned int v,
                                                                   unsigned long long fl,
                                                                   enum cudaDriverEntryPointQueryResult *st)
{
    return gdepv(VSP_H_cudaGetDriverEntryPointByVersion_ptsz, __builtin_return_address(0), s, f, v, fl, st);
}
VSP_EXPORT_HOOK(cudaGetDriverEntryPoint);
VSP_EXPORT_HOOK(cudaGetDriverEntryPoint_ptsz);
VSP_EXPORT_HOOK(cudaGetDriverEntryPointByVersion);
VSP_EXPORT_HOOK(cudaGetDriverEntryPointByVersion_ptsz);

/* This file's hooks by id (hooks.h); the other files' ids are NULL here. */
#define VSP_X_LK(id, fn) [id] = (void *)fn,
#define VSP_X_RT(id, fn)
#define VSP_X_DRV(id, fn)
/* (names pasted before they are passed on: cuda.h defines cuGetProcAddress as a macro) */
#define VSP_X(sym, base, ver, ptds, kind) VSP_X_##kind(VSP_H_##sym, vsp_h_##sym)
void *const vsp_lookup_hooks[VSP_H_COUNT] = {VSP_HOOK_LIST(VSP_X)};
#undef VSP_X
