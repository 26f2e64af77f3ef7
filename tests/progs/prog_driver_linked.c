/* Test program: the driver entry points added for issue 12, called directly (linked with
 * -lcuda, bound by the dynamic linker to the preloaded shim's exports): arrays, pools with their
 * attributes, graph memory nodes, IPC, external memory, address reservations and device views of
 * host memory. Prints each result; exit 0 when every call succeeded. */
#include <cuda.h>
#include <stdio.h>
#include <string.h>

static int bad;
#define CALL(name, expr)                          \
    do {                                          \
        CUresult r_ = (expr);                     \
        printf("%s %d\n", name, (int)r_);         \
        bad |= r_ != CUDA_SUCCESS;                \
    } while (0)

int main(void)
{
    CALL("init", cuInit(0));
    CUarray a1, a3;
    CUmipmappedArray m;
    CUDA_ARRAY_DESCRIPTOR d1 = {.Width = 256, .Height = 0, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    CUDA_ARRAY3D_DESCRIPTOR d3 = {.Width = 8, .Height = 8, .Depth = 8, .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4};
    CALL("array", cuArrayCreate(&a1, &d1));
    CALL("array3d", cuArray3DCreate(&a3, &d3));
    CALL("mipmapped", cuMipmappedArrayCreate(&m, &d3, 2));
    CALL("arraydestroy", cuArrayDestroy(a1));
    CALL("arraydestroy", cuArrayDestroy(a3));
    CALL("mipmappeddestroy", cuMipmappedArrayDestroy(m));

    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemoryPool pool;
    CUdeviceptr p;
    cuuint64_t threshold = 1 << 20;
    CALL("poolcreate", cuMemPoolCreate(&pool, &props));
    CALL("poolattr", cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold));
    CALL("frompool", cuMemAllocFromPoolAsync(&p, 4096, pool, 0));
    CALL("freeasync", cuMemFreeAsync(p, 0));
    CALL("trim", cuMemPoolTrimTo(pool, 0));
    CALL("pooldestroy", cuMemPoolDestroy(pool));

    CUgraph g;
    CUgraphNode n1, n2;
    CUDA_MEM_ALLOC_NODE_PARAMS np;
    memset(&np, 0, sizeof np);
    np.poolProps = props;
    np.bytesize = 65536;
    CALL("graph", cuGraphCreate(&g, 0));
    CALL("allocnode", cuGraphAddMemAllocNode(&n1, g, NULL, 0, &np));
    CALL("freenode", cuGraphAddMemFreeNode(&n2, g, &n1, 1, np.dptr));
    CALL("graphdestroy", cuGraphDestroy(g));

    CUdeviceptr shared, opened;
    CUipcMemHandle ih;
    CALL("alloc", cuMemAlloc(&shared, 65536));
    CALL("ipchandle", cuIpcGetMemHandle(&ih, shared));
    CALL("ipcopen", cuIpcOpenMemHandle(&opened, ih, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
    CALL("ipcclose", cuIpcCloseMemHandle(opened));
    CALL("free", cuMemFree(shared));

    CUDA_EXTERNAL_MEMORY_HANDLE_DESC hd;
    memset(&hd, 0, sizeof hd);
    hd.type = CU_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD;
    hd.handle.fd = -1;
    hd.size = 65536;
    CUDA_EXTERNAL_MEMORY_BUFFER_DESC bd;
    memset(&bd, 0, sizeof bd);
    bd.size = 4096;
    CUexternalMemory ext;
    CUdeviceptr buf;
    CALL("extimport", cuImportExternalMemory(&ext, &hd));
    CALL("extbuffer", cuExternalMemoryGetMappedBuffer(&buf, ext, &bd));
    CALL("extfree", cuMemFree(buf));
    CALL("extdestroy", cuDestroyExternalMemory(ext));

    CUdeviceptr va, view;
    void *host;
    CALL("reserve", cuMemAddressReserve(&va, 2 << 20, 0, 0, 0));
    CALL("addrfree", cuMemAddressFree(va, 2 << 20));
    CALL("hostalloc", cuMemHostAlloc(&host, 4096, 0));
    CALL("view", cuMemHostGetDevicePointer(&view, host, 0));
    CALL("hostfree", cuMemFreeHost(host));
    return bad;
}
