// GPU suite (tests/gpu, `make test-gpu`): every allocation family a CUDA program reaches, built with
// the static runtime (nvcc's default) and with -cudart shared, with three planted findings:
//   - a 64 MiB device leak (cudaMalloc never freed),
//   - host fallback: managed 8 MiB, pinned 4 MiB, mapped 2 MiB, registered 1 MiB, and 8 MiB from a
//     host-located stream-ordered pool (where the driver supports one),
//   - one out-of-memory: a 1 TiB cudaMalloc.
// Everything else is freed. stdout carries only what must be identical with and without the shim
// (call names and result codes, a checksum); only what succeeded is freed, so the program behaves
// the same when VRAMSPY_ENFORCE=vram-only refuses the host families. With no device it prints the
// error, tries one cudaMalloc and exits 3.
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1ull << 20)

static bool rt(const char *call, cudaError_t e)
{
    printf("%-34s %d\n", call, (int)e);
    return e == cudaSuccess;
}

static bool drv(const char *call, CUresult e)
{
    printf("%-34s %d\n", call, (int)e);
    return e == CUDA_SUCCESS;
}

__global__ void iota3(unsigned *p, unsigned n)
{
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = 3u * i;
}

// Stream-ordered: the device's default pool, a device pool, a host-located pool.
static void stream_ordered(cudaStream_t s)
{
    void *a = NULL, *b = NULL, *c = NULL;
    rt("cudaMallocAsync 32MiB", cudaMallocAsync(&a, 32 * MIB, s));
    cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = 0;
    cudaMemPool_t dpool = NULL, hpool = NULL;
    if (rt("cudaMemPoolCreate device", cudaMemPoolCreate(&dpool, &props)))
        rt("cudaMallocFromPoolAsync 16MiB", cudaMallocFromPoolAsync(&b, 16 * MIB, dpool, s));
    props.location.type = cudaMemLocationTypeHost;
    // a host-located pool needs CUDA 12.2 and a driver that supports it: say which, not the code
    bool host_ok = cudaMemPoolCreate(&hpool, &props) == cudaSuccess;
    printf("%-34s %s\n", "cudaMemPoolCreate host", host_ok ? "ok" : "refused");
    cudaGetLastError();
    if (host_ok)
        printf("%-34s %s\n", "host pool 8MiB",
               cudaMallocFromPoolAsync(&c, 8 * MIB, hpool, s) == cudaSuccess ? "ok" : "failed");
    rt("cudaStreamSynchronize", cudaStreamSynchronize(s));
    for (void *p : {a, b, c})
        if (p)
            cudaFreeAsync(p, s);
    cudaStreamSynchronize(s);
    if (dpool)
        cudaMemPoolDestroy(dpool);
    if (hpool)
        cudaMemPoolDestroy(hpool);
}

// A graph with a memory allocation node and its free node, launched once.
static void graph_nodes(cudaStream_t s)
{
    cudaGraph_t g;
    rt("cudaGraphCreate", cudaGraphCreate(&g, 0));
    cudaMemAllocNodeParams np;
    memset(&np, 0, sizeof np);
    np.poolProps.allocType = cudaMemAllocationTypePinned;
    np.poolProps.location.type = cudaMemLocationTypeDevice;
    np.poolProps.location.id = 0;
    np.bytesize = 8 * MIB;
    cudaGraphNode_t alloc_node, free_node;
    rt("cudaGraphAddMemAllocNode 8MiB", cudaGraphAddMemAllocNode(&alloc_node, g, NULL, 0, &np));
    rt("cudaGraphAddMemFreeNode", cudaGraphAddMemFreeNode(&free_node, g, &alloc_node, 1, np.dptr));
    cudaGraphExec_t exec;
    if (rt("cudaGraphInstantiate", cudaGraphInstantiate(&exec, g, 0))) {
        rt("cudaGraphLaunch", cudaGraphLaunch(exec, s));
        cudaStreamSynchronize(s);
        cudaGraphExecDestroy(exec);
    }
    cudaGraphDestroy(g);
}

// Virtual memory management: each handle released right after it is mapped (NVIDIA's
// vectorAddMMAP), the memory living until the unmap.
static void vmm(void)
{
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    size_t gran = 0;
    cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    size_t chunk = 4 * gran, total = 2 * chunk;
    CUdeviceptr va = 0;
    if (!drv("cuMemAddressReserve", cuMemAddressReserve(&va, total, 0, 0, 0)))
        return;
    for (int i = 0; i < 2; i++) {
        CUmemGenericAllocationHandle h;
        if (drv("cuMemCreate", cuMemCreate(&h, chunk, &prop, 0))) {
            drv("cuMemMap", cuMemMap(va + i * chunk, chunk, 0, h, 0));
            drv("cuMemRelease (still mapped)", cuMemRelease(h));
        }
    }
    CUmemAccessDesc acc;
    acc.location = prop.location;
    acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    drv("cuMemSetAccess", cuMemSetAccess(va, total, &acc, 1));
    rt("cudaMemset on the mapping", cudaMemset((void *)va, 0x5a, total));
    cudaDeviceSynchronize();
    // one unmap per mapping (a whole-range unmap of several mappings is issue 20's growable vector,
    // a separate defect: this program plants only its three findings)
    for (int i = 0; i < 2; i++)
        drv("cuMemUnmap", cuMemUnmap(va + i * chunk, chunk));
    drv("cuMemAddressFree", cuMemAddressFree(va, total));
}

// CUDA arrays through the runtime and the driver.
static void arrays(void)
{
    cudaChannelFormatDesc f = cudaCreateChannelDesc<float>();
    cudaArray_t a2 = NULL, a3 = NULL;
    if (rt("cudaMallocArray 512x512", cudaMallocArray(&a2, &f, 512, 512, 0)))
        rt("cudaFreeArray", cudaFreeArray(a2));
    if (rt("cudaMalloc3DArray 32^3", cudaMalloc3DArray(&a3, &f, make_cudaExtent(32, 32, 32), 0)))
        rt("cudaFreeArray 3D", cudaFreeArray(a3));
    CUDA_ARRAY_DESCRIPTOR d;
    memset(&d, 0, sizeof d);
    d.Format = CU_AD_FORMAT_UNSIGNED_INT8;
    d.NumChannels = 4;
    d.Width = 1024;
    d.Height = 256;
    CUarray ca;
    if (drv("cuArrayCreate 1024x256x4", cuArrayCreate(&ca, &d)))
        drv("cuArrayDestroy", cuArrayDestroy(ca));
}

// Driver entry points looked up by version through the runtime, and the driver called directly.
static void driver_entry_points(void)
{
    CUresult (*alloc)(CUdeviceptr *, size_t) = NULL;
    CUresult (*release)(CUdeviceptr) = NULL;
    cudaDriverEntryPointQueryResult q;
    rt("EntryPointByVersion cuMemAlloc", cudaGetDriverEntryPointByVersion("cuMemAlloc", (void **)&alloc, 12000, cudaEnableDefault, &q));
    rt("EntryPointByVersion cuMemFree", cudaGetDriverEntryPointByVersion("cuMemFree", (void **)&release, 12000, cudaEnableDefault, &q));
    CUdeviceptr p = 0;
    if (alloc && release && drv("cuMemAlloc via entry point 12MiB", alloc(&p, 12 * MIB)))
        drv("cuMemFree via entry point", release(p));
    if (drv("cuMemAlloc_v2 6MiB", cuMemAlloc(&p, 6 * MIB)))
        drv("cuMemFree_v2", cuMemFree(p));
}

int main(void)
{
    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    printf("devices %d rc %d\n", e == cudaSuccess ? ndev : 0, (int)e);
    if (e != cudaSuccess || ndev == 0) {
        void *p = NULL;
        rt("cudaMalloc without a device", cudaMalloc(&p, 4096));
        return 3;
    }
    cudaSetDevice(0);
    cudaFree(0);
    // device memory, used by a kernel
    unsigned *d = NULL, n = 1u << 20;
    rt("cudaMalloc 256MiB", cudaMalloc((void **)&d, 256 * MIB));
    iota3<<<(n + 255) / 256, 256>>>(d, n);
    unsigned *h = (unsigned *)malloc(n * sizeof *h);
    rt("cudaMemcpy", cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost));
    unsigned long long sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += h[i];
    printf("checksum %llu\n", sum);
    void *leak = NULL;
    rt("cudaMalloc 64MiB (planted leak)", cudaMalloc(&leak, 64 * MIB));
    // pitched and 3D
    void *pitched = NULL;
    size_t pitch = 0;
    if (rt("cudaMallocPitch 1000x1000", cudaMallocPitch(&pitched, &pitch, 1000, 1000)))
        rt("cudaFree pitched", cudaFree(pitched));
    cudaPitchedPtr p3;
    if (rt("cudaMalloc3D 512x64x64", cudaMalloc3D(&p3, make_cudaExtent(512, 64, 64))))
        rt("cudaFree 3D", cudaFree(p3.ptr));
    // host fallback, planted: managed, pinned, mapped, registered
    void *managed = NULL, *pinned = NULL, *mapped = NULL, *dev_view = NULL;
    bool m_ok = rt("cudaMallocManaged 8MiB", cudaMallocManaged(&managed, 8 * MIB, cudaMemAttachGlobal));
    bool p_ok = rt("cudaMallocHost 4MiB", cudaMallocHost(&pinned, 4 * MIB));
    bool hm_ok = rt("cudaHostAlloc mapped 2MiB", cudaHostAlloc(&mapped, 2 * MIB, cudaHostAllocMapped));
    if (hm_ok)
        rt("cudaHostGetDevicePointer", cudaHostGetDevicePointer(&dev_view, mapped, 0));
    void *reg = aligned_alloc(4096, 1 * MIB);
    bool r_ok = rt("cudaHostRegister 1MiB", cudaHostRegister(reg, 1 * MIB, cudaHostRegisterDefault));
    cudaGetLastError();
    cudaStream_t s;
    rt("cudaStreamCreate", cudaStreamCreate(&s));
    stream_ordered(s);
    graph_nodes(s);
    vmm();
    arrays();
    driver_entry_points();
    // planted out-of-memory
    void *huge = NULL;
    rt("cudaMalloc 1TiB (planted oom)", cudaMalloc(&huge, 1ull << 40));
    cudaGetLastError();
    rt("cudaFree 256MiB", cudaFree(d));
    if (m_ok)
        rt("cudaFree managed", cudaFree(managed));
    if (p_ok)
        rt("cudaFreeHost pinned", cudaFreeHost(pinned));
    if (hm_ok)
        rt("cudaFreeHost mapped", cudaFreeHost(mapped));
    if (r_ok)
        rt("cudaHostUnregister", cudaHostUnregister(reg));
    cudaStreamDestroy(s);
    free(reg);
    free(h);
    printf("done\n");
    return 0;
}
