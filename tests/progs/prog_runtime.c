/* Test program: the CUDA runtime API, as an application uses it. Modes (argv[1]):
 *   basic  - device, managed, pinned, mapped, registered, pitched, 3D, arrays, async, pools;
 *            frees most, leaks two device buffers (1 MiB + 3 MiB) and one pinned buffer;
 *   oom    - asks for more than the device has (exhaustion);
 *   oom200 - the same 200 times in a row, with nothing live;
 *   graph  - a graph with a 1 MiB memory node freed by a free node and a 512 KiB one never freed,
 *            a pool attribute set and a trim; prints each result;
 *   pools  - a host-located pool through the runtime: 64 KiB from it, then made device 0's current
 *            pool (cudaMallocAsync of 16 KiB), everything freed; prints each result;
 *   frag   - fills the arena, frees every other block, asks for a block larger than any hole
 *            but smaller than the free total (fragmentation), then falls back to managed memory;
 *   nodrv  - two cudaMalloc and one cudaMallocHost, expected to fail (no driver);
 *   chdir A B - chdir to A, 1 MiB cudaMalloc, chdir to B, 2 MiB cudaMalloc (paths relative to the
 *            first working directory stay there).
 * Prints every result code on stdout so a run with and without the shim can be compared. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024ull)

static int basic(void)
{
    void *d1, *d2, *d3, *m, *h, *hm, *p, *a1, *a2;
    size_t pitch;
    printf("malloc %d\n", cudaMalloc(&d1, 1 * MiB));
    printf("malloc %d\n", cudaMalloc(&d2, 3 * MiB));
    printf("malloc %d\n", cudaMalloc(&d3, 5 * MiB));
    cudaError_t rm = cudaMallocManaged(&m, 2 * MiB, cudaMemAttachGlobal);
    printf("managed %d\n", rm);
    if (rm == cudaSuccess)
        memset(m, 1, 2 * MiB);
    printf("host %d\n", cudaMallocHost(&h, 64 * 1024));
    printf("hostalloc %d\n", cudaHostAlloc(&hm, 128 * 1024, cudaHostAllocMapped));
    void *reg = aligned_alloc(4096, 1 * MiB);
    memset(reg, 0, 1 * MiB);
    printf("register %d\n", cudaHostRegister(reg, 1 * MiB, cudaHostRegisterDefault));
    printf("pitch %d\n", cudaMallocPitch(&p, &pitch, 1000, 100));
    struct cudaPitchedPtr pp;
    printf("3d %d\n", cudaMalloc3D(&pp, (struct cudaExtent){256, 16, 4}));
    struct cudaChannelFormatDesc desc = {32, 0, 0, 0, cudaChannelFormatKindFloat};
    cudaArray_t arr;
    printf("array %d\n", cudaMallocArray(&arr, &desc, 64, 64, 0));
    printf("async %d\n", cudaMallocAsync(&a1, 4096, 0));
    cudaMemPool_t pool;
    printf("pool %d\n", cudaDeviceGetDefaultMemPool(&pool, 0));
    printf("frompool %d\n", cudaMallocFromPoolAsync(&a2, 8192, pool, 0));
    printf("free %d\n", cudaFree(d3));
    printf("free %d\n", cudaFree(m));
    printf("freehost %d\n", cudaFreeHost(hm));
    printf("unregister %d\n", cudaHostUnregister(reg));
    free(reg);
    printf("free %d\n", cudaFree(p));
    printf("free %d\n", cudaFree(pp.ptr));
    printf("freearray %d\n", cudaFreeArray(arr));
    printf("freeasync %d\n", cudaFreeAsync(a1, 0));
    printf("freeasync %d\n", cudaFreeAsync(a2, 0));
    printf("badfree %d\n", cudaFree((void *)0x1234));
    cudaGetLastError();
    /* leaks: d1 (1 MiB), d2 (3 MiB), h (64 KiB pinned) */
    (void)d1;
    (void)d2;
    (void)h;
    return 0;
}

static int oom(void)
{
    void *d;
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    cudaError_t r = cudaMalloc(&d, tot * 2);
    printf("oom %d\n", r);
    return r == cudaErrorMemoryAllocation ? 0 : 1;
}

static int graph(void)
{
    cudaGraph_t g;
    cudaGraphNode_t a, b, c;
    struct cudaMemAllocNodeParams p;
    memset(&p, 0, sizeof p);
    p.poolProps.allocType = cudaMemAllocationTypePinned;
    p.poolProps.location.type = cudaMemLocationTypeDevice;
    p.bytesize = 1 << 20;
    printf("graph %d\n", cudaGraphCreate(&g, 0));
    printf("allocnode %d\n", cudaGraphAddMemAllocNode(&a, g, NULL, 0, &p));
    printf("freenode %d\n", cudaGraphAddMemFreeNode(&b, g, &a, 1, p.dptr));
    p.bytesize = 512 << 10;
    printf("allocnode %d\n", cudaGraphAddMemAllocNode(&c, g, NULL, 0, &p));
    cudaMemPool_t dp;
    cudaDeviceGetDefaultMemPool(&dp, 0);
    uint64_t threshold = 64 << 20;
    printf("threshold %d\n", cudaMemPoolSetAttribute(dp, cudaMemPoolAttrReleaseThreshold, &threshold));
    printf("trim %d\n", cudaMemPoolTrimTo(dp, 0));
    printf("graphdestroy %d\n", cudaGraphDestroy(g));
    return 0;
}

static int pools(void)
{
    struct cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeHost;
    cudaMemPool_t hp = NULL;
    void *p;
    cudaError_t r = cudaMemPoolCreate(&hp, &props);
    printf("hostpool %d\n", r);
    if (r == cudaSuccess) {
        printf("frompool %d\n", r = cudaMallocFromPoolAsync(&p, 65536, hp, 0));
        if (r == cudaSuccess)
            cudaFreeAsync(p, 0);
        printf("setcurrent %d\n", r = cudaDeviceSetMemPool(0, hp));
        printf("async %d\n", r = cudaMallocAsync(&p, 16384, 0));
        if (r == cudaSuccess)
            cudaFreeAsync(p, 0);
        cudaMemPool_t dp;
        cudaDeviceGetDefaultMemPool(&dp, 0);
        cudaDeviceSetMemPool(0, dp);
        printf("destroy %d\n", cudaMemPoolDestroy(hp));
    }
    return 0;
}

/* 200 failing allocations in a row, nothing live: a retry loop */
static int oom_loop(void)
{
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    int failed = 0;
    for (int i = 0; i < 200; i++) {
        void *d;
        failed += cudaMalloc(&d, tot * 2) == cudaErrorMemoryAllocation;
    }
    printf("failed %d\n", failed);
    return failed == 200 ? 0 : 1;
}

static int frag(void)
{
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    size_t block = tot / 16;
    void *blocks[16];
    int n = 0;
    while (n < 16 && cudaMalloc(&blocks[n], block) == cudaSuccess)
        n++;
    cudaGetLastError();
    for (int i = 0; i < n; i += 2)
        cudaFree(blocks[i]);
    void *big;
    cudaError_t r = cudaMalloc(&big, block * 3 / 2);
    printf("frag %d\n", r);
    void *fallback = NULL;
    cudaError_t r2 = cudaMallocManaged(&fallback, block * 3 / 2, cudaMemAttachGlobal);
    printf("fallback %d\n", r2);
    for (int i = 1; i < n; i += 2)
        cudaFree(blocks[i]);
    if (r2 == cudaSuccess)
        cudaFree(fallback);
    return r == cudaErrorMemoryAllocation ? 0 : 1;
}

static int nodrv(void)
{
    void *d, *h;
    printf("malloc %d\n", cudaMalloc(&d, 1024));
    printf("malloc %d\n", cudaMalloc(&d, 2048));
    printf("host %d\n", cudaMallocHost(&h, 4096));
    return 0;
}

#include <unistd.h>

static int in_dirs(const char *a, const char *b)
{
    void *d1, *d2;
    if (chdir(a) != 0)
        return 2;
    printf("malloc %d\n", cudaMalloc(&d1, 1 * MiB));
    if (chdir(b) != 0)
        return 2;
    printf("malloc %d\n", cudaMalloc(&d2, 2 * MiB));
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "basic";
    if (!strcmp(mode, "basic"))
        return basic();
    if (!strcmp(mode, "oom"))
        return oom();
    if (!strcmp(mode, "pools"))
        return pools();
    if (!strcmp(mode, "graph"))
        return graph();
    if (!strcmp(mode, "oom200"))
        return oom_loop();
    if (!strcmp(mode, "frag"))
        return frag();
    if (!strcmp(mode, "nodrv"))
        return nodrv();
    if (!strcmp(mode, "chdir") && argc > 3)
        return in_dirs(argv[2], argv[3]);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
