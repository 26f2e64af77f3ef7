/*
 * fake_cudart.c - a fake CUDA *runtime* (libcudart.so.13) for vramspy's tests.
 *
 * It reaches the driver the way NVIDIA's libcudart.so.13 does (see
 * shared/notes/cuda-interception.md), so a shim that works against it sees
 * the same sequence as with the real runtime:
 *   1. dlopen("libcuda.so.1", RTLD_NOW)            (failure: every call -> 35)
 *   2. dlsym(handle, "cuGetProcAddress_v2")        (the only dlsym, ever)
 *   3. through it: probe "" , ("cuInit", 2000), ("cuGetProcAddress", 11030),
 *      ("cuGetProcAddress", 12000)
 *   4. every further lookup through the pointer returned for
 *      ("cuGetProcAddress", 12000), all at initialisation, with flags 0, plus
 *      flags 2 (CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) for the
 *      per-thread-stream variants; cudaGetDriverEntryPoint* use it too.
 *   5. cuGetExportTable is called once (result ignored), cuInit(0), then the
 *      primary context of device 0 is retained and made current on each
 *      thread that calls in.
 * Only the entry points vramspy's tests need are provided (see the version
 * script fake_cudart.map: every export gets the version node libcudart.so.13,
 * like NVIDIA's library, which is also linked -Bsymbolic).
 *
 * Build (from the repository root, after the fake driver):
 *   gcc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -I$(CUDA_HOME)/include \
 *       -Wl,-soname,libcudart.so.13 -Wl,--version-script=tests/fakes/fake_cudart.map \
 *       -Wl,-Bsymbolic -o build/tests/fakes/libcudart.so.13 \
 *       tests/fakes/fake_cudart.c -ldl -lpthread
 *   ($(CUDA_HOME) is Make syntax; in a shell write ${CUDA_HOME:-/usr/local/cuda}.)
 *
 * Runtime semantics: failures set a thread-local last error (cudaGetLastError
 * returns and clears it, cudaPeekAtLastError only returns it); driver errors
 * map OUT_OF_MEMORY->2, INVALID_VALUE->1, NOT_INITIALIZED->3,
 * HOST_MEMORY_NOT_REGISTERED->713, HOST_MEMORY_ALREADY_REGISTERED->712,
 * INVALID_DEVICE->101, INVALID_HANDLE->400, NOT_SUPPORTED->801,
 * NO_DEVICE->100, STUB_LIBRARY->34, anything else->999.  Out-parameters are
 * untouched on failure, except that cudaMalloc(&p, 0) succeeds with p = NULL
 * and cudaGetDriverEntryPoint* report "not found" as cudaSuccess with
 * *funcPtr = NULL (as NVIDIA documents).
 *
 * Switches (environment):
 *  - VSP_FAKE_UNLOAD_DRIVER=1: like NVIDIA's runtime, dlclose the libcuda.so.1
 *    handle when initialisation fails after the driver was opened (cuInit or
 *    cuDeviceGetCount failed, no device), forgetting every driver pointer;
 *    and dlclose it in this library's destructor (when the runtime itself is
 *    unloaded, e.g. with the plugin that needed it), so that the driver really
 *    leaves the process.  Read when the runtime initialises.
 *
 * Other runtime versions: compiled with -DFAKE_RUNTIME_VERSION=12080 and the
 * version script fake_cudart12.map (soname libcudart.so.12) it stands for a
 * CUDA 12.8 runtime, so that two runtimes can live in one process.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The per-thread-default-stream exports; cuda_runtime_api.h only declares
 * them under __CUDA_API_VERSION_INTERNAL. */
cudaError_t CUDARTAPI cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream);
cudaError_t CUDARTAPI cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream);
cudaError_t CUDARTAPI cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t memPool,
                                                   cudaStream_t stream);
cudaError_t CUDARTAPI cudaStreamSynchronize_ptsz(cudaStream_t stream);
cudaError_t CUDARTAPI cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr, unsigned long long flags,
                                                   enum cudaDriverEntryPointQueryResult *driverStatus);
cudaError_t CUDARTAPI cudaGetDriverEntryPointByVersion_ptsz(const char *symbol, void **funcPtr,
                                                            unsigned int cudaVersion, unsigned long long flags,
                                                            enum cudaDriverEntryPointQueryResult *driverStatus);

/* NVIDIA's libcudart.so.13 is built against an old glibc and imports
 * dlopen@GLIBC_2.2.5 and dlsym@GLIBC_2.2.5; bind the same versions (a plain
 * build on glibc >= 2.34 would import the GLIBC_2.34 ones). */
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");

#define EXPORT __attribute__((visibility("default")))
#ifndef FAKE_RUNTIME_VERSION
#define FAKE_RUNTIME_VERSION 13000
#endif

_Static_assert(sizeof(struct cudaMemPoolProps) == sizeof(CUmemPoolProps), "pool props layout");
_Static_assert(sizeof(struct cudaMemLocation) == sizeof(CUmemLocation), "mem location layout");

/* ------------------------------------------------------------------------ */
/* Driver entry points, all obtained through cuGetProcAddress                */

static struct {
    PFN_cuInit_v2000 cuInit;
    PFN_cuGetProcAddress_v11030 cuGetProcAddress_legacy;
    PFN_cuGetExportTable_v3000 cuGetExportTable;
    PFN_cuDriverGetVersion_v2020 cuDriverGetVersion;
    PFN_cuDeviceGetCount_v2000 cuDeviceGetCount;
    PFN_cuDevicePrimaryCtxRetain_v7000 cuDevicePrimaryCtxRetain;
    PFN_cuDevicePrimaryCtxRelease_v11000 cuDevicePrimaryCtxRelease;
    PFN_cuDevicePrimaryCtxReset_v11000 cuDevicePrimaryCtxReset;
    PFN_cuCtxSetCurrent_v4000 cuCtxSetCurrent;
    PFN_cuCtxSynchronize_v2000 cuCtxSynchronize;
    PFN_cuStreamCreate_v2000 cuStreamCreate;
    PFN_cuStreamDestroy_v4000 cuStreamDestroy;
    PFN_cuStreamSynchronize_v2000 cuStreamSynchronize;
    PFN_cuStreamSynchronize_v7000_ptsz cuStreamSynchronize_ptsz;
    PFN_cuMemGetInfo_v3020 cuMemGetInfo;
    PFN_cuMemAlloc_v3020 cuMemAlloc;
    PFN_cuMemAllocPitch_v3020 cuMemAllocPitch;
    PFN_cuMemFree_v3020 cuMemFree;
    PFN_cuMemAllocManaged_v6000 cuMemAllocManaged;
    PFN_cuMemHostAlloc_v2020 cuMemHostAlloc;
    PFN_cuMemFreeHost_v2000 cuMemFreeHost;
    PFN_cuMemHostRegister_v6050 cuMemHostRegister;
    PFN_cuMemHostUnregister_v4000 cuMemHostUnregister;
    PFN_cuMemAllocAsync_v11020 cuMemAllocAsync;
    PFN_cuMemAllocAsync_v11020_ptsz cuMemAllocAsync_ptsz;
    PFN_cuMemAllocFromPoolAsync_v11020 cuMemAllocFromPoolAsync;
    PFN_cuMemAllocFromPoolAsync_v11020_ptsz cuMemAllocFromPoolAsync_ptsz;
    PFN_cuMemFreeAsync_v11020 cuMemFreeAsync;
    PFN_cuMemFreeAsync_v11020_ptsz cuMemFreeAsync_ptsz;
    PFN_cuDeviceGetDefaultMemPool_v11020 cuDeviceGetDefaultMemPool;
    PFN_cuMemPoolCreate_v11020 cuMemPoolCreate;
    PFN_cuMemPoolDestroy_v11020 cuMemPoolDestroy;
    PFN_cuDeviceSetMemPool_v11020 cuDeviceSetMemPool;
    PFN_cuMemPoolSetAttribute_v11020 cuMemPoolSetAttribute;
    PFN_cuMemPoolTrimTo_v11020 cuMemPoolTrimTo;
    PFN_cuGraphCreate_v10000 cuGraphCreate;
    PFN_cuGraphDestroy_v10000 cuGraphDestroy;
    PFN_cuGraphAddMemAllocNode_v11040 cuGraphAddMemAllocNode;
    PFN_cuGraphAddMemFreeNode_v11040 cuGraphAddMemFreeNode;
    PFN_cuArrayCreate_v3020 cuArrayCreate;
    PFN_cuArray3DCreate_v3020 cuArray3DCreate;
    PFN_cuArrayDestroy_v2000 cuArrayDestroy;
    PFN_cuMipmappedArrayCreate_v5000 cuMipmappedArrayCreate;
    PFN_cuMipmappedArrayDestroy_v5000 cuMipmappedArrayDestroy;
} drv;

/* Looked up through the driver's cuGetProcAddress after initialisation. */
static const struct {
    const char *name;
    int version;
    cuuint64_t flags;
    size_t offset;
} g_lookups[] = {
#define L(name, ver, flags, field) {name, ver, flags, offsetof(__typeof__(drv), field)}
    L("cuGetExportTable", 3000, 0, cuGetExportTable),
    L("cuDriverGetVersion", 2020, 0, cuDriverGetVersion),
    L("cuDeviceGetCount", 2000, 0, cuDeviceGetCount),
    L("cuDevicePrimaryCtxRetain", 7000, 0, cuDevicePrimaryCtxRetain),
    L("cuDevicePrimaryCtxRelease", 11000, 0, cuDevicePrimaryCtxRelease),
    L("cuDevicePrimaryCtxReset", 11000, 0, cuDevicePrimaryCtxReset),
    L("cuCtxSetCurrent", 4000, 0, cuCtxSetCurrent),
    L("cuCtxSynchronize", 2000, 0, cuCtxSynchronize),
    L("cuStreamCreate", 2000, 0, cuStreamCreate),
    L("cuStreamDestroy", 4000, 0, cuStreamDestroy),
    L("cuStreamSynchronize", 2000, 0, cuStreamSynchronize),
    L("cuStreamSynchronize", 7000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, cuStreamSynchronize_ptsz),
    L("cuMemGetInfo", 3020, 0, cuMemGetInfo),
    L("cuMemAlloc", 3020, 0, cuMemAlloc),
    L("cuMemAllocPitch", 3020, 0, cuMemAllocPitch),
    L("cuMemFree", 3020, 0, cuMemFree),
    L("cuMemAllocManaged", 6000, 0, cuMemAllocManaged),
    L("cuMemHostAlloc", 2020, 0, cuMemHostAlloc),
    L("cuMemFreeHost", 2000, 0, cuMemFreeHost),
    L("cuMemHostRegister", 6050, 0, cuMemHostRegister),
    L("cuMemHostUnregister", 4000, 0, cuMemHostUnregister),
    L("cuMemAllocAsync", 11020, 0, cuMemAllocAsync),
    L("cuMemAllocAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, cuMemAllocAsync_ptsz),
    L("cuMemAllocFromPoolAsync", 11020, 0, cuMemAllocFromPoolAsync),
    L("cuMemAllocFromPoolAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
      cuMemAllocFromPoolAsync_ptsz),
    L("cuMemFreeAsync", 11020, 0, cuMemFreeAsync),
    L("cuMemFreeAsync", 11020, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, cuMemFreeAsync_ptsz),
    L("cuDeviceGetDefaultMemPool", 11020, 0, cuDeviceGetDefaultMemPool),
    L("cuMemPoolCreate", 11020, 0, cuMemPoolCreate),
    L("cuMemPoolDestroy", 11020, 0, cuMemPoolDestroy),
    L("cuDeviceSetMemPool", 11020, 0, cuDeviceSetMemPool),
    L("cuMemPoolSetAttribute", 11020, 0, cuMemPoolSetAttribute),
    L("cuMemPoolTrimTo", 11020, 0, cuMemPoolTrimTo),
    L("cuGraphCreate", 10000, 0, cuGraphCreate),
    L("cuGraphDestroy", 10000, 0, cuGraphDestroy),
    L("cuGraphAddMemAllocNode", 11040, 0, cuGraphAddMemAllocNode),
    L("cuGraphAddMemFreeNode", 11040, 0, cuGraphAddMemFreeNode),
    L("cuArrayCreate", 3020, 0, cuArrayCreate),
    L("cuArray3DCreate", 3020, 0, cuArray3DCreate),
    L("cuArrayDestroy", 2000, 0, cuArrayDestroy),
    L("cuMipmappedArrayCreate", 5000, 0, cuMipmappedArrayCreate),
    L("cuMipmappedArrayDestroy", 5000, 0, cuMipmappedArrayDestroy),
#undef L
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static cudaError_t g_init_err = cudaErrorInitializationError;
static PFN_cuGetProcAddress_v12000 g_gpa;   /* the driver's answer for ("cuGetProcAddress", 12000) */
static CUcontext g_ctx;
static __thread cudaError_t t_last_error;
static __thread int t_ctx_bound;
static __thread int t_device;                /* always 0: one device */

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

static cudaError_t map_error(CUresult r)
{
    switch (r) {
    case CUDA_SUCCESS: return cudaSuccess;
    case CUDA_ERROR_OUT_OF_MEMORY: return cudaErrorMemoryAllocation;
    case CUDA_ERROR_INVALID_VALUE: return cudaErrorInvalidValue;
    case CUDA_ERROR_NOT_INITIALIZED: return cudaErrorInitializationError;
    case CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED: return cudaErrorHostMemoryNotRegistered;
    case CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED: return cudaErrorHostMemoryAlreadyRegistered;
    case CUDA_ERROR_INVALID_DEVICE: return cudaErrorInvalidDevice;
    case CUDA_ERROR_INVALID_HANDLE: return cudaErrorInvalidResourceHandle;
    case CUDA_ERROR_NOT_SUPPORTED: return cudaErrorNotSupported;
    case CUDA_ERROR_NO_DEVICE: return cudaErrorNoDevice;
    case CUDA_ERROR_STUB_LIBRARY: return cudaErrorStubLibrary;
    default: return cudaErrorUnknown;
    }
}

static cudaError_t fail(cudaError_t e)
{
    t_last_error = e;
    return e;
}

static cudaError_t ret(CUresult r)
{
    return r == CUDA_SUCCESS ? cudaSuccess : fail(map_error(r));
}

#define ERR_LIST(X)                                                                             \
    X(cudaSuccess, "no error")                                                                  \
    X(cudaErrorInvalidValue, "invalid argument")                                                \
    X(cudaErrorMemoryAllocation, "out of memory")                                               \
    X(cudaErrorInitializationError, "initialization error")                                     \
    X(cudaErrorInvalidChannelDescriptor, "invalid channel descriptor")                          \
    X(cudaErrorStubLibrary, "CUDA driver is a stub library")                                    \
    X(cudaErrorInsufficientDriver, "CUDA driver version is insufficient for CUDA runtime version") \
    X(cudaErrorNoDevice, "no CUDA-capable device is detected")                                  \
    X(cudaErrorInvalidDevice, "invalid device ordinal")                                         \
    X(cudaErrorInvalidResourceHandle, "invalid resource handle")                                \
    X(cudaErrorSymbolNotFound, "named symbol not found")                                        \
    X(cudaErrorHostMemoryAlreadyRegistered, "part or all of the requested memory range is already mapped") \
    X(cudaErrorHostMemoryNotRegistered, "pointer does not correspond to a registered memory region") \
    X(cudaErrorNotSupported, "operation not supported")                                         \
    X(cudaErrorUnknown, "unknown error")

EXPORT const char *CUDARTAPI cudaGetErrorName(cudaError_t error)
{
    switch (error) {
#define X(code, text) case code: return #code;
    ERR_LIST(X)
#undef X
    default: return "unrecognized error code";
    }
}

EXPORT const char *CUDARTAPI cudaGetErrorString(cudaError_t error)
{
    switch (error) {
#define X(code, text) case code: return text;
    ERR_LIST(X)
#undef X
    default: return "unrecognized error code";
    }
}

EXPORT cudaError_t CUDARTAPI cudaGetLastError(void)
{
    cudaError_t e = t_last_error;
    t_last_error = cudaSuccess;
    return e;
}

EXPORT cudaError_t CUDARTAPI cudaPeekAtLastError(void)
{
    return t_last_error;
}

/* ------------------------------------------------------------------------ */
/* Initialisation                                                           */

static void *g_driver;                      /* the libcuda.so.1 handle, NULL once closed */
static int g_unload;                         /* VSP_FAKE_UNLOAD_DRIVER=1 */

/* What NVIDIA's runtime does after a failed initialisation: close the driver again and keep
 * no pointer into it. */
static void unload_driver(void)
{
    if (!g_unload || !g_driver)
        return;
    memset(&drv, 0, sizeof drv);
    g_gpa = NULL;
    dlclose(g_driver);
    g_driver = NULL;
}

__attribute__((destructor)) static void rt_fini(void)
{
    unload_driver();
}

static void rt_init_driver(void);

static void rt_init(void)
{
    const char *u = getenv("VSP_FAKE_UNLOAD_DRIVER");
    g_unload = u && !strcmp(u, "1");
    rt_init_driver();
    if (g_init_err != cudaSuccess)
        unload_driver();
}

static void rt_init_driver(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) {
        g_init_err = cudaErrorInsufficientDriver;
        return;
    }
    g_driver = h;
    PFN_cuGetProcAddress_v12000 gpa0 = (PFN_cuGetProcAddress_v12000)dlsym(h, "cuGetProcAddress_v2");
    if (!gpa0) {
        g_init_err = cudaErrorInsufficientDriver;
        return;
    }
    CUdriverProcAddressQueryResult st;
    void *p = NULL;
    (void)gpa0("", &p, FAKE_RUNTIME_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &st); /* probe */
    p = NULL;
    if (gpa0("cuInit", &p, 2000, CU_GET_PROC_ADDRESS_DEFAULT, &st) == CUDA_SUCCESS)
        drv.cuInit = (PFN_cuInit_v2000)p;
    p = NULL;
    if (gpa0("cuGetProcAddress", &p, 11030, CU_GET_PROC_ADDRESS_DEFAULT, &st) == CUDA_SUCCESS)
        drv.cuGetProcAddress_legacy = (PFN_cuGetProcAddress_v11030)p;
    p = NULL;
    if (gpa0("cuGetProcAddress", &p, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &st) != CUDA_SUCCESS || !p ||
        !drv.cuInit) {
        g_init_err = cudaErrorInsufficientDriver;
        return;
    }
    g_gpa = (PFN_cuGetProcAddress_v12000)p;

    /* From here on, only g_gpa. */
    for (size_t i = 0; i < sizeof g_lookups / sizeof g_lookups[0]; i++) {
        p = NULL;
        if (g_gpa(g_lookups[i].name, &p, g_lookups[i].version, g_lookups[i].flags, &st) != CUDA_SUCCESS)
            p = NULL;
        memcpy((char *)&drv + g_lookups[i].offset, &p, sizeof p);
    }

    if (drv.cuGetExportTable) {
        static const CUuuid probe_id = {{0}};
        const void *table = NULL;
        (void)drv.cuGetExportTable(&table, &probe_id);
    }

    CUresult r = drv.cuInit(0);
    if (r != CUDA_SUCCESS) {
        g_init_err = map_error(r);
        return;
    }
    int count = 0;
    if (!drv.cuDeviceGetCount || !drv.cuDevicePrimaryCtxRetain || !drv.cuCtxSetCurrent) {
        g_init_err = cudaErrorInsufficientDriver;
        return;
    }
    r = drv.cuDeviceGetCount(&count);
    if (r != CUDA_SUCCESS) {
        g_init_err = map_error(r);
        return;
    }
    if (count < 1) {
        g_init_err = cudaErrorNoDevice;
        return;
    }
    r = drv.cuDevicePrimaryCtxRetain(&g_ctx, 0);
    if (r != CUDA_SUCCESS) {
        g_init_err = map_error(r);
        return;
    }
    g_init_err = cudaSuccess;
}

/* Initialises once, and makes the primary context current on this thread. */
static cudaError_t enter(void)
{
    pthread_once(&g_once, rt_init);
    if (g_init_err != cudaSuccess)
        return g_init_err;
    if (!t_ctx_bound) {
        CUresult r = drv.cuCtxSetCurrent(g_ctx);
        if (r != CUDA_SUCCESS)
            return map_error(r);
        t_ctx_bound = 1;
    }
    return cudaSuccess;
}

#define ENTER()                                \
    do {                                       \
        cudaError_t e_ = enter();              \
        if (e_ != cudaSuccess)                 \
            return fail(e_);                   \
    } while (0)

/* A driver entry point the driver did not provide. */
#define NEED(fn)                               \
    do {                                       \
        if (!drv.fn)                           \
            return fail(cudaErrorNotSupported); \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Versions and devices                                                     */

EXPORT cudaError_t CUDARTAPI cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (!runtimeVersion)
        return fail(cudaErrorInvalidValue);
    *runtimeVersion = FAKE_RUNTIME_VERSION;
    return cudaSuccess;
}

/* 0 without a driver, as NVIDIA's runtime reports. */
EXPORT cudaError_t CUDARTAPI cudaDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return fail(cudaErrorInvalidValue);
    pthread_once(&g_once, rt_init);
    if (!drv.cuDriverGetVersion) {
        *driverVersion = 0;
        return cudaSuccess;
    }
    return ret(drv.cuDriverGetVersion(driverVersion));
}

EXPORT cudaError_t CUDARTAPI cudaGetDeviceCount(int *count)
{
    if (!count)
        return fail(cudaErrorInvalidValue);
    ENTER();
    return ret(drv.cuDeviceGetCount(count));
}

EXPORT cudaError_t CUDARTAPI cudaGetDevice(int *device)
{
    if (!device)
        return fail(cudaErrorInvalidValue);
    ENTER();
    *device = t_device;
    return cudaSuccess;
}

EXPORT cudaError_t CUDARTAPI cudaSetDevice(int device)
{
    ENTER();
    if (device != 0)
        return fail(cudaErrorInvalidDevice);
    t_device = device;
    return cudaSuccess;
}

EXPORT cudaError_t CUDARTAPI cudaDeviceSynchronize(void)
{
    ENTER();
    NEED(cuCtxSynchronize);
    return ret(drv.cuCtxSynchronize());
}

/* Frees all device memory, arrays and mipmapped arrays of the device (the
 * fake driver's cuDevicePrimaryCtxReset); host memory is left alone. */
EXPORT cudaError_t CUDARTAPI cudaDeviceReset(void)
{
    ENTER();
    NEED(cuCtxSynchronize);
    NEED(cuDevicePrimaryCtxReset);
    CUresult r = drv.cuCtxSynchronize();
    if (r == CUDA_SUCCESS)
        r = drv.cuDevicePrimaryCtxReset(0);
    return ret(r);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */

EXPORT cudaError_t CUDARTAPI cudaStreamCreate(cudaStream_t *pStream)
{
    if (!pStream)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuStreamCreate);
    CUstream s;
    CUresult r = drv.cuStreamCreate(&s, 0);
    if (r == CUDA_SUCCESS)
        *pStream = s;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaStreamDestroy(cudaStream_t stream)
{
    ENTER();
    NEED(cuStreamDestroy);
    return ret(drv.cuStreamDestroy(stream));
}

EXPORT cudaError_t CUDARTAPI cudaStreamSynchronize(cudaStream_t stream)
{
    ENTER();
    NEED(cuStreamSynchronize);
    return ret(drv.cuStreamSynchronize(stream));
}

EXPORT cudaError_t CUDARTAPI cudaStreamSynchronize_ptsz(cudaStream_t stream)
{
    ENTER();
    NEED(cuStreamSynchronize_ptsz);
    return ret(drv.cuStreamSynchronize_ptsz(stream));
}

/* ------------------------------------------------------------------------ */
/* Device memory                                                            */

EXPORT cudaError_t CUDARTAPI cudaMemGetInfo(size_t *free, size_t *total)
{
    if (!free || !total)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMemGetInfo);
    return ret(drv.cuMemGetInfo(free, total));
}

/* A zero-byte cudaMalloc succeeds with a NULL pointer and no driver call
 * (NVIDIA's runtime behaves so; cuMemAlloc(0) itself is an error). */
EXPORT cudaError_t CUDARTAPI cudaMalloc(void **devPtr, size_t size)
{
    if (!devPtr)
        return fail(cudaErrorInvalidValue);
    ENTER();
    if (size == 0) {
        *devPtr = NULL;
        return cudaSuccess;
    }
    NEED(cuMemAlloc);
    CUdeviceptr d;
    CUresult r = drv.cuMemAlloc(&d, size);
    if (r == CUDA_SUCCESS)
        *devPtr = (void *)(uintptr_t)d;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    if (!devPtr || !pitch)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMemAllocPitch);
    CUdeviceptr d;
    size_t p;
    CUresult r = drv.cuMemAllocPitch(&d, &p, width, height, 16);
    if (r == CUDA_SUCCESS) {
        *devPtr = (void *)(uintptr_t)d;
        *pitch = p;
    }
    return ret(r);
}

/* Linear 3D memory: a pitched allocation of max(h,1) * max(d,1) rows. */
EXPORT cudaError_t CUDARTAPI cudaMalloc3D(struct cudaPitchedPtr *pitchedDevPtr, struct cudaExtent extent)
{
    if (!pitchedDevPtr)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMemAllocPitch);
    size_t rows;
    if (__builtin_mul_overflow(extent.height ? extent.height : 1, extent.depth ? extent.depth : 1, &rows))
        return fail(cudaErrorMemoryAllocation);
    CUdeviceptr d;
    size_t p;
    CUresult r = drv.cuMemAllocPitch(&d, &p, extent.width, rows, 16);
    if (r == CUDA_SUCCESS) {
        pitchedDevPtr->ptr = (void *)(uintptr_t)d;
        pitchedDevPtr->pitch = p;
        pitchedDevPtr->xsize = extent.width;
        pitchedDevPtr->ysize = extent.height;
    }
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    if (!devPtr)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMemAllocManaged);
    CUdeviceptr d;
    CUresult r = drv.cuMemAllocManaged(&d, size, flags);
    if (r == CUDA_SUCCESS)
        *devPtr = (void *)(uintptr_t)d;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaFree(void *devPtr)
{
    ENTER();
    if (!devPtr)
        return cudaSuccess;
    NEED(cuMemFree);
    return ret(drv.cuMemFree((CUdeviceptr)(uintptr_t)devPtr));
}

/* ------------------------------------------------------------------------ */
/* Host memory                                                              */

static cudaError_t host_alloc(void **pHost, size_t size, unsigned int flags)
{
    if (!pHost)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMemHostAlloc);
    void *p;
    CUresult r = drv.cuMemHostAlloc(&p, size, flags);
    if (r == CUDA_SUCCESS)
        *pHost = p;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMallocHost(void **ptr, size_t size)
{
    return host_alloc(ptr, size, 0);
}

EXPORT cudaError_t CUDARTAPI cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    return host_alloc(pHost, size, flags);
}

EXPORT cudaError_t CUDARTAPI cudaFreeHost(void *ptr)
{
    ENTER();
    if (!ptr)
        return cudaSuccess;
    NEED(cuMemFreeHost);
    return ret(drv.cuMemFreeHost(ptr));
}

EXPORT cudaError_t CUDARTAPI cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    ENTER();
    NEED(cuMemHostRegister);
    return ret(drv.cuMemHostRegister(ptr, size, flags));
}

EXPORT cudaError_t CUDARTAPI cudaHostUnregister(void *ptr)
{
    ENTER();
    NEED(cuMemHostUnregister);
    return ret(drv.cuMemHostUnregister(ptr));
}

/* ------------------------------------------------------------------------ */
/* Stream-ordered allocation and pools                                      */

static cudaError_t malloc_async(PFN_cuMemAllocAsync_v11020 fn, void **devPtr, size_t size, cudaStream_t s)
{
    if (!devPtr)
        return fail(cudaErrorInvalidValue);
    if (!fn)
        return fail(cudaErrorNotSupported);
    CUdeviceptr d;
    CUresult r = fn(&d, size, s);
    if (r == CUDA_SUCCESS)
        *devPtr = (void *)(uintptr_t)d;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    ENTER();
    return malloc_async(drv.cuMemAllocAsync, devPtr, size, hStream);
}

EXPORT cudaError_t CUDARTAPI cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream)
{
    ENTER();
    return malloc_async(drv.cuMemAllocAsync_ptsz, devPtr, size, hStream);
}

static cudaError_t malloc_from_pool(PFN_cuMemAllocFromPoolAsync_v11020 fn, void **ptr, size_t size,
                                    cudaMemPool_t pool, cudaStream_t s)
{
    if (!ptr)
        return fail(cudaErrorInvalidValue);
    if (!fn)
        return fail(cudaErrorNotSupported);
    CUdeviceptr d;
    CUresult r = fn(&d, size, pool, s);
    if (r == CUDA_SUCCESS)
        *ptr = (void *)(uintptr_t)d;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMallocFromPoolAsync(void **ptr, size_t size, cudaMemPool_t memPool,
                                                     cudaStream_t stream)
{
    ENTER();
    return malloc_from_pool(drv.cuMemAllocFromPoolAsync, ptr, size, memPool, stream);
}

EXPORT cudaError_t CUDARTAPI cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t memPool,
                                                          cudaStream_t stream)
{
    ENTER();
    return malloc_from_pool(drv.cuMemAllocFromPoolAsync_ptsz, ptr, size, memPool, stream);
}

EXPORT cudaError_t CUDARTAPI cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    ENTER();
    NEED(cuMemFreeAsync);
    return ret(drv.cuMemFreeAsync((CUdeviceptr)(uintptr_t)devPtr, hStream));
}

EXPORT cudaError_t CUDARTAPI cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream)
{
    ENTER();
    NEED(cuMemFreeAsync_ptsz);
    return ret(drv.cuMemFreeAsync_ptsz((CUdeviceptr)(uintptr_t)devPtr, hStream));
}

EXPORT cudaError_t CUDARTAPI cudaDeviceGetDefaultMemPool(cudaMemPool_t *memPool, int device)
{
    if (!memPool)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuDeviceGetDefaultMemPool);
    CUmemoryPool p;
    CUresult r = drv.cuDeviceGetDefaultMemPool(&p, device);
    if (r == CUDA_SUCCESS)
        *memPool = p;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMemPoolCreate(cudaMemPool_t *memPool, const struct cudaMemPoolProps *poolProps)
{
    if (!memPool || !poolProps)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMemPoolCreate);
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = (CUmemAllocationType)poolProps->allocType;
    props.handleTypes = (CUmemAllocationHandleType)poolProps->handleTypes;
    props.location.type = (CUmemLocationType)poolProps->location.type;
    props.location.id = poolProps->location.id;
    props.win32SecurityAttributes = poolProps->win32SecurityAttributes;
    props.maxSize = poolProps->maxSize;
    props.usage = poolProps->usage;
    CUmemoryPool p;
    CUresult r = drv.cuMemPoolCreate(&p, &props);
    if (r == CUDA_SUCCESS)
        *memPool = p;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMemPoolSetAttribute(cudaMemPool_t memPool, enum cudaMemPoolAttr attr, void *value)
{
    ENTER();
    NEED(cuMemPoolSetAttribute);
    return ret(drv.cuMemPoolSetAttribute(memPool, (CUmemPool_attribute)attr, value));
}

EXPORT cudaError_t CUDARTAPI cudaMemPoolTrimTo(cudaMemPool_t memPool, size_t minBytesToKeep)
{
    ENTER();
    NEED(cuMemPoolTrimTo);
    return ret(drv.cuMemPoolTrimTo(memPool, minBytesToKeep));
}

EXPORT cudaError_t CUDARTAPI cudaGraphCreate(cudaGraph_t *pGraph, unsigned int flags)
{
    ENTER();
    NEED(cuGraphCreate);
    return ret(drv.cuGraphCreate(pGraph, flags));
}

EXPORT cudaError_t CUDARTAPI cudaGraphDestroy(cudaGraph_t graph)
{
    ENTER();
    NEED(cuGraphDestroy);
    return ret(drv.cuGraphDestroy(graph));
}

EXPORT cudaError_t CUDARTAPI cudaGraphAddMemAllocNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                                      const cudaGraphNode_t *pDependencies, size_t numDependencies,
                                                      struct cudaMemAllocNodeParams *nodeParams)
{
    if (!nodeParams)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuGraphAddMemAllocNode);
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    p.poolProps.allocType = (CUmemAllocationType)nodeParams->poolProps.allocType;
    p.poolProps.location.type = (CUmemLocationType)nodeParams->poolProps.location.type;
    p.poolProps.location.id = nodeParams->poolProps.location.id;
    p.bytesize = nodeParams->bytesize;
    CUresult r = drv.cuGraphAddMemAllocNode(pGraphNode, graph, pDependencies, numDependencies, &p);
    if (r == CUDA_SUCCESS)
        nodeParams->dptr = (void *)(uintptr_t)p.dptr;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaGraphAddMemFreeNode(cudaGraphNode_t *pGraphNode, cudaGraph_t graph,
                                                     const cudaGraphNode_t *pDependencies, size_t numDependencies,
                                                     void *dptr)
{
    ENTER();
    NEED(cuGraphAddMemFreeNode);
    return ret(drv.cuGraphAddMemFreeNode(pGraphNode, graph, pDependencies, numDependencies,
                                         (CUdeviceptr)(uintptr_t)dptr));
}

EXPORT cudaError_t CUDARTAPI cudaDeviceSetMemPool(int device, cudaMemPool_t memPool)
{
    ENTER();
    NEED(cuDeviceSetMemPool);
    return ret(drv.cuDeviceSetMemPool(device, memPool));
}

EXPORT cudaError_t CUDARTAPI cudaMemPoolDestroy(cudaMemPool_t memPool)
{
    ENTER();
    NEED(cuMemPoolDestroy);
    return ret(drv.cuMemPoolDestroy(memPool));
}

/* ------------------------------------------------------------------------ */
/* Arrays                                                                   */

/* Signed/unsigned/float channel descriptors with 1, 2 or 4 equal channels. */
static cudaError_t to_format(const struct cudaChannelFormatDesc *d, CUarray_format *fmt, unsigned *nch)
{
    if (!d)
        return cudaErrorInvalidValue;
    int bits = d->x;
    unsigned n = 0;
    if (d->x > 0) n = 1;
    if (n == 1 && d->y > 0) n = 2;
    if (n == 2 && d->z > 0) n = 3;
    if (n == 3 && d->w > 0) n = 4;
    if (n != 1 && n != 2 && n != 4)
        return cudaErrorInvalidChannelDescriptor;
    const int chans[4] = {d->x, d->y, d->z, d->w};
    for (unsigned i = 0; i < 4; i++)
        if ((i < n && chans[i] != bits) || (i >= n && chans[i] != 0))
            return cudaErrorInvalidChannelDescriptor;
    switch (d->f) {
    case cudaChannelFormatKindSigned:
        *fmt = bits == 8 ? CU_AD_FORMAT_SIGNED_INT8 : bits == 16 ? CU_AD_FORMAT_SIGNED_INT16
             : bits == 32 ? CU_AD_FORMAT_SIGNED_INT32 : (CUarray_format)0;
        break;
    case cudaChannelFormatKindUnsigned:
        *fmt = bits == 8 ? CU_AD_FORMAT_UNSIGNED_INT8 : bits == 16 ? CU_AD_FORMAT_UNSIGNED_INT16
             : bits == 32 ? CU_AD_FORMAT_UNSIGNED_INT32 : (CUarray_format)0;
        break;
    case cudaChannelFormatKindFloat:
        *fmt = bits == 16 ? CU_AD_FORMAT_HALF : bits == 32 ? CU_AD_FORMAT_FLOAT : (CUarray_format)0;
        break;
    default:
        *fmt = (CUarray_format)0;
        break;
    }
    if (*fmt == (CUarray_format)0)
        return cudaErrorInvalidChannelDescriptor;
    *nch = n;
    return cudaSuccess;
}

static cudaError_t array3d(cudaArray_t *array, const struct cudaChannelFormatDesc *desc, size_t w, size_t h,
                           size_t d, unsigned int flags)
{
    if (!array)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuArray3DCreate);
    CUDA_ARRAY3D_DESCRIPTOR ad;
    memset(&ad, 0, sizeof ad);
    cudaError_t e = to_format(desc, &ad.Format, &ad.NumChannels);
    if (e != cudaSuccess)
        return fail(e);
    ad.Width = w;
    ad.Height = h;
    ad.Depth = d;
    ad.Flags = flags;
    CUarray a;
    CUresult r = drv.cuArray3DCreate(&a, &ad);
    if (r == CUDA_SUCCESS)
        *array = (cudaArray_t)(void *)a;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMallocArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                             size_t width, size_t height, unsigned int flags)
{
    if (flags != 0)
        return array3d(array, desc, width, height, 0, flags);
    if (!array)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuArrayCreate);
    CUDA_ARRAY_DESCRIPTOR ad;
    memset(&ad, 0, sizeof ad);
    cudaError_t e = to_format(desc, &ad.Format, &ad.NumChannels);
    if (e != cudaSuccess)
        return fail(e);
    ad.Width = width;
    ad.Height = height;
    CUarray a;
    CUresult r = drv.cuArrayCreate(&a, &ad);
    if (r == CUDA_SUCCESS)
        *array = (cudaArray_t)(void *)a;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaMalloc3DArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                               struct cudaExtent extent, unsigned int flags)
{
    return array3d(array, desc, extent.width, extent.height, extent.depth, flags);
}

EXPORT cudaError_t CUDARTAPI cudaMallocMipmappedArray(cudaMipmappedArray_t *mipmappedArray,
                                                      const struct cudaChannelFormatDesc *desc,
                                                      struct cudaExtent extent, unsigned int numLevels,
                                                      unsigned int flags)
{
    if (!mipmappedArray)
        return fail(cudaErrorInvalidValue);
    ENTER();
    NEED(cuMipmappedArrayCreate);
    CUDA_ARRAY3D_DESCRIPTOR ad;
    memset(&ad, 0, sizeof ad);
    cudaError_t e = to_format(desc, &ad.Format, &ad.NumChannels);
    if (e != cudaSuccess)
        return fail(e);
    ad.Width = extent.width;
    ad.Height = extent.height;
    ad.Depth = extent.depth;
    ad.Flags = flags;
    CUmipmappedArray m;
    CUresult r = drv.cuMipmappedArrayCreate(&m, &ad, numLevels);
    if (r == CUDA_SUCCESS)
        *mipmappedArray = (cudaMipmappedArray_t)(void *)m;
    return ret(r);
}

EXPORT cudaError_t CUDARTAPI cudaFreeArray(cudaArray_t array)
{
    ENTER();
    if (!array)
        return cudaSuccess;
    NEED(cuArrayDestroy);
    return ret(drv.cuArrayDestroy((CUarray)(void *)array));
}

EXPORT cudaError_t CUDARTAPI cudaFreeMipmappedArray(cudaMipmappedArray_t mipmappedArray)
{
    ENTER();
    if (!mipmappedArray)
        return cudaSuccess;
    NEED(cuMipmappedArrayDestroy);
    return ret(drv.cuMipmappedArrayDestroy((CUmipmappedArray)(void *)mipmappedArray));
}

/* ------------------------------------------------------------------------ */
/* Driver entry points (through the driver's cuGetProcAddress pointer)       */

static cudaError_t entry_point(const char *symbol, void **funcPtr, unsigned int cudaVersion,
                               unsigned long long flags, enum cudaDriverEntryPointQueryResult *driverStatus)
{
    if (!symbol || !funcPtr || cudaVersion > INT32_MAX)
        return fail(cudaErrorInvalidValue);
    ENTER();
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    void *p = NULL;
    CUresult r = g_gpa(symbol, &p, (int)cudaVersion, (cuuint64_t)flags, &st);
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_NOT_FOUND)
        return ret(r);
    *funcPtr = r == CUDA_SUCCESS ? p : NULL;
    if (driverStatus)
        *driverStatus = (enum cudaDriverEntryPointQueryResult)st;
    return cudaSuccess;
}

EXPORT cudaError_t CUDARTAPI cudaGetDriverEntryPoint(const char *symbol, void **funcPtr, unsigned long long flags,
                                                     enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return entry_point(symbol, funcPtr, FAKE_RUNTIME_VERSION, flags, driverStatus);
}

EXPORT cudaError_t CUDARTAPI cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr,
                                                          unsigned long long flags,
                                                          enum cudaDriverEntryPointQueryResult *driverStatus)
{
    if (flags == cudaEnableDefault)
        flags = cudaEnablePerThreadDefaultStream;
    return entry_point(symbol, funcPtr, FAKE_RUNTIME_VERSION, flags, driverStatus);
}

EXPORT cudaError_t CUDARTAPI cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                                              unsigned int cudaVersion, unsigned long long flags,
                                                              enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return entry_point(symbol, funcPtr, cudaVersion, flags, driverStatus);
}

EXPORT cudaError_t CUDARTAPI cudaGetDriverEntryPointByVersion_ptsz(const char *symbol, void **funcPtr,
                                                                   unsigned int cudaVersion,
                                                                   unsigned long long flags,
                                                                   enum cudaDriverEntryPointQueryResult *driverStatus)
{
    if (flags == cudaEnableDefault)
        flags = cudaEnablePerThreadDefaultStream;
    return entry_point(symbol, funcPtr, cudaVersion, flags, driverStatus);
}
