/*
 * fake_smoke.c - smoke test of the CUDA test doubles (fake_cuda.c as
 * libcuda.so.1, fake_cudart.c as libcudart.so.13) used by vramspy's tests.
 *
 * Checks: allocation round trip, OOM beyond capacity, a real fragmentation
 * failure, usable host/managed memory, stream-ordered allocation and pools,
 * pitched memory and arrays, VMM through driver entry points,
 * cudaGetDriverEntryPointByVersion("cuMemAlloc", 12000), and (VSP_FAKE_LOG)
 * that the runtime reached the driver through cuGetProcAddress as NVIDIA's
 * does.  In builds without AddressSanitizer it also interposes dlsym to check
 * that the runtime calls dlsym exactly once.  It sets VSP_FAKE_DEVICE_MEM=64M
 * and VSP_FAKE_LOG=<temp file> itself.  Exit 0 on success; failures on stderr.
 *
 * Build and run (from the repository root, after both fakes):
 *   gcc -std=gnu11 -O2 -g -Wall -Wextra -I$(CUDA_HOME)/include \
 *       -o build/tests/fakes/fake_smoke tests/fakes/fake_smoke.c \
 *       -Lbuild/tests/fakes -l:libcudart.so.13 -ldl
 *   LD_LIBRARY_PATH=build/tests/fakes build/tests/fakes/fake_smoke
 * ($(CUDA_HOME) is Make syntax; in a shell write ${CUDA_HOME:-/usr/local/cuda}.)
 * (Add -fsanitize=address,undefined to all three builds for a sanitizer run.)
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runtime per-thread-stream exports (not declared by cuda_runtime_api.h). */
cudaError_t CUDARTAPI cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream);
cudaError_t CUDARTAPI cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream);
cudaError_t CUDARTAPI cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t memPool,
                                                   cudaStream_t stream);
cudaError_t CUDARTAPI cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr, unsigned long long flags,
                                                   enum cudaDriverEntryPointQueryResult *driverStatus);

#define MiB ((size_t)1 << 20)
#define CAPACITY (64 * MiB)

static int g_failures;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            g_failures++;                                                 \
        }                                                                 \
    } while (0)

#define CHECK_RT(call, want)                                                          \
    do {                                                                              \
        cudaError_t got_ = (call);                                                    \
        CHECK(got_ == (want), "%s returned %d (%s), want %d", #call, (int)got_,       \
              cudaGetErrorName(got_), (int)(want));                                   \
    } while (0)

#define CHECK_CU(call, want)                                                          \
    do {                                                                              \
        CUresult got_ = (call);                                                       \
        CHECK(got_ == (want), "%s returned %d, want %d", #call, (int)got_, (int)(want)); \
    } while (0)

/* ------------------------------------------------------------------------ */
/* dlsym interposer: counts dlsym calls made from inside libcudart.so.13.    */

#if !defined(__SANITIZE_ADDRESS__) && !defined(FAKE_SMOKE_NO_DLSYM_HOOK)
#define HAVE_DLSYM_HOOK 1
static int g_rt_dlsym_calls;
static char g_rt_dlsym_last[64];
typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn real_dlsym(void)
{
    static dlsym_fn fn;
    if (!fn) {
        fn = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        if (!fn)
            fn = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    }
    return fn;
}

void *dlsym(void *handle, const char *name)
{
    Dl_info info;
    if (dladdr(__builtin_return_address(0), &info) && info.dli_fname && strstr(info.dli_fname, "libcudart")) {
        g_rt_dlsym_calls++;
        snprintf(g_rt_dlsym_last, sizeof g_rt_dlsym_last, "%s", name);
    }
    return real_dlsym()(handle, name);
}
#define DLSYM(h, n) real_dlsym()((h), (n))
#else
#define DLSYM(h, n) dlsym((h), (n))
#endif

/* ------------------------------------------------------------------------ */

/* cudaCreateChannelDesc is a runtime export the fake does not provide, and
 * make_cudaExtent lives in a header this test does not need. */
static struct cudaChannelFormatDesc chan(int x, int y, int z, int w, enum cudaChannelFormatKind f)
{
    struct cudaChannelFormatDesc d = {x, y, z, w, f};
    return d;
}

static struct cudaExtent extent(size_t w, size_t h, size_t d)
{
    struct cudaExtent e = {w, h, d};
    return e;
}

static size_t dev_free(void)
{
    size_t f = 0, t = 0;
    CHECK_RT(cudaMemGetInfo(&f, &t), cudaSuccess);
    return f;
}

static void *g_cuda;    /* our own handle on the fake driver */

static void test_before_init(void)
{
    g_cuda = dlopen("libcuda.so.1", RTLD_NOW);
    CHECK(g_cuda != NULL, "dlopen libcuda.so.1: %s", dlerror());
    if (!g_cuda)
        return;
    PFN_cuMemGetInfo_v3020 getinfo = (PFN_cuMemGetInfo_v3020)DLSYM(g_cuda, "cuMemGetInfo_v2");
    PFN_cuMemAlloc_v3020 alloc = (PFN_cuMemAlloc_v3020)DLSYM(g_cuda, "cuMemAlloc_v2");
    CHECK(getinfo && alloc, "driver exports missing");
    if (!getinfo || !alloc)
        return;
    size_t f, t;
    CUdeviceptr d = 0;
    CHECK_CU(getinfo(&f, &t), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_CU(alloc(&d, 4096), CUDA_ERROR_NOT_INITIALIZED);
}

static void test_basics(void)
{
    int v = 0, n = 0, dev = -1;
    CHECK_RT(cudaRuntimeGetVersion(&v), cudaSuccess);
    CHECK(v == 13000, "runtime version %d", v);
    CHECK_RT(cudaGetDeviceCount(&n), cudaSuccess);
    CHECK(n == 1, "device count %d", n);
    CHECK_RT(cudaDriverGetVersion(&v), cudaSuccess);
    CHECK(v == 13000, "driver version %d", v);
    CHECK_RT(cudaGetDevice(&dev), cudaSuccess);
    CHECK(dev == 0, "device %d", dev);
    CHECK_RT(cudaSetDevice(0), cudaSuccess);
    CHECK_RT(cudaSetDevice(1), cudaErrorInvalidDevice);
    CHECK_RT(cudaPeekAtLastError(), cudaErrorInvalidDevice);
    CHECK_RT(cudaGetLastError(), cudaErrorInvalidDevice);
    CHECK_RT(cudaGetLastError(), cudaSuccess);
    CHECK_RT(cudaDeviceSynchronize(), cudaSuccess);
    size_t f = 0, t = 0;
    CHECK_RT(cudaMemGetInfo(&f, &t), cudaSuccess);
    CHECK(t == CAPACITY && f == CAPACITY, "free %zu total %zu", f, t);
    CHECK(strcmp(cudaGetErrorName(cudaErrorMemoryAllocation), "cudaErrorMemoryAllocation") == 0, "error name");
    CHECK(strcmp(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory") == 0, "error string");
}

static void test_round_trip(void)
{
    size_t before = dev_free();
    void *p = NULL, *q = NULL;
    CHECK_RT(cudaMalloc(&p, MiB), cudaSuccess);
    CHECK(p != NULL, "NULL device pointer");
    CHECK_RT(cudaMalloc(&q, 1000), cudaSuccess);
    CHECK(q != NULL && q != p, "second pointer %p", q);
    CHECK(dev_free() == before - MiB - 1024, "free after allocs %zu", dev_free());
    CHECK_RT(cudaFree(p), cudaSuccess);
    CHECK_RT(cudaFree(q), cudaSuccess);
    CHECK(dev_free() == before, "free after frees %zu", dev_free());
    CHECK_RT(cudaFree(p), cudaErrorInvalidValue);             /* double free */
    CHECK_RT(cudaGetLastError(), cudaErrorInvalidValue);
    CHECK_RT(cudaFree(NULL), cudaSuccess);
    void *z = (void *)0x1;
    CHECK_RT(cudaMalloc(&z, 0), cudaSuccess);
    CHECK(z == NULL, "cudaMalloc(0) gave %p", z);
}

static void test_oom(void)
{
    void *sentinel = (void *)0x1234, *p = sentinel;
    CHECK_RT(cudaMalloc(&p, CAPACITY + 1), cudaErrorMemoryAllocation);
    CHECK(p == sentinel, "out-parameter changed on failure");
    CHECK_RT(cudaPeekAtLastError(), cudaErrorMemoryAllocation);
    CHECK_RT(cudaGetLastError(), cudaErrorMemoryAllocation);
    CHECK_RT(cudaGetLastError(), cudaSuccess);
    CHECK(dev_free() == CAPACITY, "free after OOM %zu", dev_free());
}

static void test_fragmentation(void)
{
    enum { N = CAPACITY / MiB };
    void *blocks[N];
    int n = 0;
    for (; n < N; n++)
        if (cudaMalloc(&blocks[n], MiB) != cudaSuccess)
            break;
    CHECK(n == N, "filled %d of %d blocks", n, N);
    void *extra = NULL;
    CHECK_RT(cudaMalloc(&extra, 512), cudaErrorMemoryAllocation);   /* arena full */
    (void)cudaGetLastError();
    for (int i = 0; i < n; i += 2)
        CHECK_RT(cudaFree(blocks[i]), cudaSuccess);
    size_t f = dev_free();
    CHECK(f == (size_t)(n + 1) / 2 * MiB, "free after freeing every other block %zu", f);
    void *big = NULL;
    size_t want = 2 * MiB;          /* bigger than any hole, less than the free total */
    CHECK(f >= want, "free %zu < %zu", f, want);
    CHECK_RT(cudaMalloc(&big, want), cudaErrorMemoryAllocation);
    CHECK_RT(cudaGetLastError(), cudaErrorMemoryAllocation);
    void *fits = NULL;
    CHECK_RT(cudaMalloc(&fits, MiB), cudaSuccess);                 /* a hole still fits */
    CHECK_RT(cudaFree(fits), cudaSuccess);
    for (int i = 1; i < n; i += 2)
        CHECK_RT(cudaFree(blocks[i]), cudaSuccess);
    CHECK(dev_free() == CAPACITY, "free after coalescing %zu", dev_free());
    CHECK_RT(cudaMalloc(&big, CAPACITY), cudaSuccess);             /* holes coalesced */
    CHECK_RT(cudaFree(big), cudaSuccess);
}

static void test_host(void)
{
    size_t before = dev_free();
    char *h = NULL, *m = NULL, *w = NULL;
    CHECK_RT(cudaMallocHost((void **)&h, MiB), cudaSuccess);
    CHECK_RT(cudaHostAlloc((void **)&w, 3 * 4096 + 1, cudaHostAllocMapped | cudaHostAllocPortable), cudaSuccess);
    CHECK_RT(cudaMallocManaged((void **)&m, MiB, cudaMemAttachGlobal), cudaSuccess);
    if (h && m && w) {
        memset(h, 0xab, MiB);
        memset(m, 0xcd, MiB);
        memset(w, 0xef, 3 * 4096 + 1);
        CHECK(h[MiB - 1] == (char)0xab && m[MiB - 1] == (char)0xcd && w[3 * 4096] == (char)0xef,
              "host memory not writable");
        CHECK(((uintptr_t)h & 4095) == 0 && ((uintptr_t)m & 4095) == 0, "host memory not page aligned");
    }
    CHECK(dev_free() == before, "host allocations consumed device memory");
    CHECK_RT(cudaMallocManaged((void **)&m, 0, cudaMemAttachGlobal), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    CHECK_RT(cudaFree(h), cudaErrorInvalidValue);                 /* pinned memory is not cudaFree'd */
    (void)cudaGetLastError();
    CHECK_RT(cudaFreeHost(h), cudaSuccess);
    CHECK_RT(cudaFreeHost(w), cudaSuccess);
    CHECK_RT(cudaFree(m), cudaSuccess);                           /* managed: cudaFree */

    char *buf = malloc(64 * 1024);
    CHECK_RT(cudaHostRegister(buf, 64 * 1024, cudaHostRegisterDefault), cudaSuccess);
    CHECK_RT(cudaHostRegister(buf + 4096, 4096, cudaHostRegisterDefault), cudaErrorHostMemoryAlreadyRegistered);
    (void)cudaGetLastError();
    CHECK_RT(cudaHostUnregister(buf), cudaSuccess);
    CHECK_RT(cudaHostUnregister(buf), cudaErrorHostMemoryNotRegistered);
    CHECK_RT(cudaGetLastError(), cudaErrorHostMemoryNotRegistered);
    free(buf);
}

static void test_async_and_pools(void)
{
    size_t before = dev_free();
    cudaStream_t s = NULL;
    CHECK_RT(cudaStreamCreate(&s), cudaSuccess);
    void *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    CHECK_RT(cudaMallocAsync(&a, MiB, s), cudaSuccess);
    CHECK_RT(cudaMallocAsync_ptsz(&b, MiB, s), cudaSuccess);
    CHECK(dev_free() == before - 2 * MiB, "async allocations not counted");
    CHECK_RT(cudaFreeAsync(a, s), cudaSuccess);
    CHECK_RT(cudaFreeAsync_ptsz(b, s), cudaSuccess);
    CHECK_RT(cudaStreamSynchronize(s), cudaSuccess);
    CHECK(dev_free() == before, "async frees not returned");

    cudaMemPool_t defpool = NULL, pool = NULL;
    CHECK_RT(cudaDeviceGetDefaultMemPool(&defpool, 0), cudaSuccess);
    CHECK_RT(cudaMallocFromPoolAsync(&c, MiB, defpool, s), cudaSuccess);
    CHECK_RT(cudaFreeAsync(c, s), cudaSuccess);

    struct cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = 0;
    CHECK_RT(cudaMemPoolCreate(&pool, &props), cudaSuccess);
    CHECK_RT(cudaMallocFromPoolAsync_ptsz(&d, 2 * MiB, pool, s), cudaSuccess);
    CHECK(dev_free() == before - 2 * MiB, "pool allocation not counted");
    CHECK_RT(cudaMemPoolDestroy(pool), cudaSuccess);      /* outstanding allocation stays valid */
    CHECK_RT(cudaFreeAsync(d, s), cudaSuccess);
    CHECK_RT(cudaMemPoolDestroy(defpool), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    CHECK_RT(cudaStreamSynchronize(NULL), cudaSuccess);
    CHECK_RT(cudaStreamDestroy(s), cudaSuccess);
    CHECK_RT(cudaStreamDestroy(s), cudaErrorInvalidResourceHandle);
    (void)cudaGetLastError();
    CHECK(dev_free() == before, "free after pools %zu", dev_free());
}

static void test_pitch_and_arrays(void)
{
    size_t before = dev_free();
    void *p = NULL;
    size_t pitch = 0;
    CHECK_RT(cudaMallocPitch(&p, &pitch, 1000, 10), cudaSuccess);
    CHECK(pitch == 1024, "pitch %zu", pitch);
    CHECK(dev_free() == before - 10240, "pitched size");
    CHECK_RT(cudaFree(p), cudaSuccess);

    struct cudaPitchedPtr pp;
    CHECK_RT(cudaMalloc3D(&pp, extent(100, 4, 3)), cudaSuccess);
    CHECK(pp.pitch == 512 && pp.xsize == 100 && pp.ysize == 4, "3D pitched ptr");
    CHECK(dev_free() == before - 512 * 12, "3D size");
    CHECK_RT(cudaFree(pp.ptr), cudaSuccess);

    struct cudaChannelFormatDesc f1 = chan(32, 0, 0, 0, cudaChannelFormatKindFloat);
    struct cudaChannelFormatDesc f4 = chan(32, 32, 32, 32, cudaChannelFormatKindFloat);
    struct cudaChannelFormatDesc u1 = chan(8, 0, 0, 0, cudaChannelFormatKindUnsigned);
    cudaArray_t a = NULL, a3 = NULL;
    CHECK_RT(cudaMallocArray(&a, &f1, 100, 10, 0), cudaSuccess);          /* 4000 bytes */
    CHECK(dev_free() == before - 4096, "2D array size");
    CHECK_RT(cudaMalloc3DArray(&a3, &f4, extent(16, 16, 4), 0), cudaSuccess);   /* 16 KiB */
    CHECK(dev_free() == before - 4096 - 16384, "3D array size");
    cudaMipmappedArray_t mm = NULL;
    CHECK_RT(cudaMallocMipmappedArray(&mm, &u1, extent(64, 64, 0), 3, 0), cudaSuccess);
    CHECK(dev_free() == before - 4096 - 16384 - 5632, "mipmap size (64^2+32^2+16^2 -> 5632)");
    CHECK_RT(cudaFree(a), cudaErrorInvalidValue);                          /* arrays are not cudaFree'd */
    (void)cudaGetLastError();
    CHECK_RT(cudaFreeArray(a), cudaSuccess);
    CHECK_RT(cudaFreeArray(a3), cudaSuccess);
    CHECK_RT(cudaFreeMipmappedArray(mm), cudaSuccess);
    CHECK_RT(cudaFreeArray(a), cudaErrorInvalidResourceHandle);
    (void)cudaGetLastError();
    CHECK(dev_free() == before, "free after arrays %zu", dev_free());
}

/* The deprecated cudaGetDriverEntryPoint is what CUDA 11/12 code still calls. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void *entry(const char *name)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult st = cudaDriverEntryPointSymbolNotFound;
    CHECK_RT(cudaGetDriverEntryPoint(name, &fn, cudaEnableDefault, &st), cudaSuccess);
    CHECK(fn != NULL && st == cudaDriverEntryPointSuccess, "entry point %s", name);
    return fn;
}
#pragma GCC diagnostic pop

static void test_vmm(void)
{
    PFN_cuMemGetAllocationGranularity_v10020 gran = entry("cuMemGetAllocationGranularity");
    PFN_cuMemCreate_v10020 create = entry("cuMemCreate");
    PFN_cuMemRelease_v10020 release = entry("cuMemRelease");
    PFN_cuMemAddressReserve_v10020 reserve = entry("cuMemAddressReserve");
    PFN_cuMemAddressFree_v10020 addrfree = entry("cuMemAddressFree");
    PFN_cuMemMap_v10020 map = entry("cuMemMap");
    PFN_cuMemUnmap_v10020 unmap = entry("cuMemUnmap");
    PFN_cuMemSetAccess_v10020 setaccess = entry("cuMemSetAccess");
    PFN_cuMemGetAddressRange_v3020 range = entry("cuMemGetAddressRange");
    if (!gran || !create || !release || !reserve || !addrfree || !map || !unmap || !setaccess || !range)
        return;
    size_t before = dev_free();
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t g = 0;
    CHECK_CU(gran(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM), CUDA_SUCCESS);
    CHECK(g == 2 * MiB, "granularity %zu", g);
    CUmemGenericAllocationHandle h = 0;
    CHECK_CU(create(&h, g + 1, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(create(&h, 2 * g, &prop, 0), CUDA_SUCCESS);
    CHECK(dev_free() == before - 2 * g, "cuMemCreate did not consume the arena");
    CUdeviceptr va = 0;
    CHECK_CU(reserve(&va, 4 * g, 0, 0, 0), CUDA_SUCCESS);
    CHECK(va != 0 && va % g == 0, "reservation %#llx", (unsigned long long)va);
    CHECK(dev_free() == before - 2 * g, "a reservation consumed the arena");
    CHECK_CU(map(va + g, 2 * g, 0, h, 0), CUDA_SUCCESS);
    CHECK_CU(map(va + 2 * g, 2 * g, 0, h, 0), CUDA_ERROR_INVALID_VALUE);      /* overlaps */
    CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK_CU(setaccess(va + g, 2 * g, &acc, 1), CUDA_SUCCESS);
    CHECK_CU(setaccess(va, 2 * g, &acc, 1), CUDA_ERROR_INVALID_VALUE);       /* not all mapped */
    CUdeviceptr base = 0;
    size_t sz = 0;
    CHECK_CU(range(&base, &sz, va + g + 123), CUDA_SUCCESS);
    CHECK(base == va + g && sz == 2 * g, "address range of a mapping");
    CHECK_CU(release(h), CUDA_SUCCESS);
    CHECK(dev_free() == before - 2 * g, "released while mapped must stay allocated");
    CHECK_CU(unmap(va + g, 2 * g), CUDA_SUCCESS);
    CHECK(dev_free() == before, "released and unmapped must be freed");
    CHECK_CU(release(h), CUDA_ERROR_INVALID_VALUE);
    CHECK_CU(addrfree(va, 4 * g), CUDA_SUCCESS);
    CHECK_CU(addrfree(va, 4 * g), CUDA_ERROR_INVALID_VALUE);
}

static void test_entry_points(void)
{
    void *fn = NULL;
    enum cudaDriverEntryPointQueryResult st = cudaDriverEntryPointSymbolNotFound;
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuMemAlloc", &fn, 12000, cudaEnableDefault, &st), cudaSuccess);
    CHECK(fn != NULL && st == cudaDriverEntryPointSuccess, "cuMemAlloc@12000");
    void *v2 = g_cuda ? DLSYM(g_cuda, "cuMemAlloc_v2") : NULL;
    CHECK(fn == v2, "cuMemAlloc@12000 is %p, cuMemAlloc_v2 is %p", fn, v2);
    if (fn) {
        size_t before = dev_free();
        CUdeviceptr d = 0;
        CHECK_CU(((PFN_cuMemAlloc_v3020)fn)(&d, 3 * MiB), CUDA_SUCCESS);
        CHECK(dev_free() == before - 3 * MiB, "cuMemAlloc_v2 through the entry point");
        CHECK_RT(cudaFree((void *)(uintptr_t)d), cudaSuccess);
    }

    fn = (void *)0x1;
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuMemAlloc", &fn, 2000, 0, &st), cudaSuccess);
    CHECK(fn == NULL && st == cudaDriverEntryPointVersionNotSufficent, "cuMemAlloc@2000: %p %d", fn, (int)st);
    fn = (void *)0x1;
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuNoSuchFunction", &fn, 13000, 0, &st), cudaSuccess);
    CHECK(fn == NULL && st == cudaDriverEntryPointSymbolNotFound, "unknown name: %p %d", fn, (int)st);
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuMemAlloc", &fn, 13010, 0, &st), cudaErrorInvalidValue);
    (void)cudaGetLastError();

    /* Per-thread default stream variants, and the CUDA 13 cuCtxGetDevice ABI. */
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuMemAllocAsync", &fn, 12000, cudaEnablePerThreadDefaultStream, &st),
             cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuMemAllocAsync_ptsz"), "cuMemAllocAsync ptsz");
    CHECK_RT(cudaGetDriverEntryPoint_ptsz("cuMemFreeAsync", &fn, cudaEnableDefault, &st), cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuMemFreeAsync_ptsz"), "_ptsz entry point defaults to per-thread");
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuMemAllocAsync", &fn, 12000, cudaEnableLegacyStream, &st),
             cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuMemAllocAsync"), "cuMemAllocAsync legacy");
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuCtxGetDevice", &fn, 12000, 0, &st), cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuCtxGetDevice"), "cuCtxGetDevice@12000");
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuCtxGetDevice", &fn, 13000, 0, &st), cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuCtxGetDevice_v2"), "cuCtxGetDevice@13000");
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuGetProcAddress", &fn, 11030, 0, &st), cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuGetProcAddress"), "cuGetProcAddress@11030 (legacy)");
    CHECK_RT(cudaGetDriverEntryPointByVersion("cuGetProcAddress", &fn, 12000, 0, &st), cudaSuccess);
    CHECK(g_cuda && fn == DLSYM(g_cuda, "cuGetProcAddress_v2"), "cuGetProcAddress@12000");

    /* The legacy 4-argument cuGetProcAddress works too. */
    PFN_cuGetProcAddress_v11030 legacy = g_cuda ? (PFN_cuGetProcAddress_v11030)DLSYM(g_cuda, "cuGetProcAddress") : NULL;
    if (legacy) {
        void *p = NULL;
        CHECK_CU(legacy("cuMemFree", &p, 11030, 0), CUDA_SUCCESS);
        CHECK(p == DLSYM(g_cuda, "cuMemFree_v2"), "legacy lookup");
    }
}

static void test_reset(void)
{
    void *p = NULL;
    CHECK_RT(cudaMalloc(&p, 5 * MiB), cudaSuccess);
    CHECK_RT(cudaDeviceReset(), cudaSuccess);
    CHECK(dev_free() == CAPACITY, "cudaDeviceReset did not free device memory");
    CHECK_RT(cudaFree(p), cudaErrorInvalidValue);
    (void)cudaGetLastError();
}

/* The log must show NVIDIA's sequence, then everything through gpa. */
static void test_log(const char *path, int test_gpa_lookups)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot read %s", path);
    if (!f)
        return;
    static char lines[2048][128];
    int n = 0;
    while (n < 2048 && fgets(lines[n], sizeof lines[n], f)) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    fclose(f);
    const char *start[] = {"gpa \"\" 13000 0", "gpa cuInit 2000 0", "gpa cuGetProcAddress 11030 0",
                           "gpa cuGetProcAddress 12000 0"};
    for (int i = 0; i < 4; i++)
        CHECK(i < n && strcmp(lines[i], start[i]) == 0, "log line %d is '%s', want '%s'", i + 1,
              i < n ? lines[i] : "(none)", start[i]);
    const char *want[] = {
        "gpa cuMemAlloc 3020 0",          "gpa cuMemFree 3020 0",
        "gpa cuMemGetInfo 3020 0",        "gpa cuMemAllocPitch 3020 0",
        "gpa cuMemAllocManaged 6000 0",   "gpa cuMemHostAlloc 2020 0",
        "gpa cuMemFreeHost 2000 0",       "gpa cuMemHostRegister 6050 0",
        "gpa cuMemHostUnregister 4000 0", "gpa cuMemAllocAsync 11020 0",
        "gpa cuMemAllocAsync 11020 2",    "gpa cuMemFreeAsync 11020 0",
        "gpa cuMemFreeAsync 11020 2",     "gpa cuMemAllocFromPoolAsync 11020 0",
        "gpa cuMemAllocFromPoolAsync 11020 2", "gpa cuArray3DCreate 3020 0",
        "gpa cuMipmappedArrayCreate 5000 0",
        "gpa cuMemCreate 13000 0",        /* cudaGetDriverEntryPoint: version 13000 */
        "gpa cuMemAlloc 12000 0",         /* cudaGetDriverEntryPointByVersion */
        "gpa cuMemFreeAsync 13000 2",     /* cudaGetDriverEntryPoint_ptsz */
    };
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (int i = 4; i < n && !found; i++)
            found = strcmp(lines[i], want[w]) == 0;
        CHECK(found, "log lacks '%s'", want[w]);
    }
    int gpa_self = 0;
    for (int i = 0; i < n; i++) {
        /* The only legacy (4-argument) lookup is the test's own. */
        CHECK(strncmp(lines[i], "gpa ", 4) == 0 || strcmp(lines[i], "gpa_legacy cuMemFree 11030 0") == 0,
              "unexpected log line '%s'", lines[i]);
        gpa_self += strncmp(lines[i], "gpa cuGetProcAddress ", 21) == 0;
    }
    CHECK(gpa_self == 2 + test_gpa_lookups, "%d lookups of cuGetProcAddress, want %d", gpa_self,
          2 + test_gpa_lookups);
}

int main(void)
{
    char log_path[] = "/tmp/vsp_fake_smoke_XXXXXX";
    int fd = mkstemp(log_path);
    if (fd < 0) {
        perror("mkstemp");
        return 2;
    }
    close(fd);
    setenv("VSP_FAKE_DEVICE_MEM", "64M", 1);
    setenv("VSP_FAKE_LOG", log_path, 1);

    test_before_init();
    test_basics();
    test_round_trip();
    test_oom();
    test_fragmentation();
    test_host();
    test_async_and_pools();
    test_pitch_and_arrays();
    test_vmm();
    test_entry_points();
    test_reset();
    test_log(log_path, 2 /* test_entry_points looked up cuGetProcAddress twice */);
#ifdef HAVE_DLSYM_HOOK
    CHECK(g_rt_dlsym_calls == 1 && strcmp(g_rt_dlsym_last, "cuGetProcAddress_v2") == 0,
          "libcudart called dlsym %d times (last: %s), want once for cuGetProcAddress_v2", g_rt_dlsym_calls,
          g_rt_dlsym_last);
#endif
    unlink(log_path);
    if (g_cuda)
        dlclose(g_cuda);
    if (g_failures) {
        fprintf(stderr, "fake_smoke: %d failure(s)\n", g_failures);
        return 1;
    }
    fprintf(stderr, "fake_smoke: all checks passed\n");
    return 0;
}
