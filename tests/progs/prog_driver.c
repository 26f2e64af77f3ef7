/* Test program: the CUDA driver API reached without the runtime. Modes (argv[1]):
 *   gpa     - as CUDA 13's runtime does: dlopen("libcuda.so.1"), dlsym "cuGetProcAddress_v2",
 *             then everything through the pointer returned for "cuGetProcAddress";
 *   legacy  - through the 4-argument cuGetProcAddress found by dlsym;
 *   dlsym   - dlsym(handle, "cuMemAlloc_v2") and friends;
 *   vmm     - cuMemCreate / cuMemAddressReserve / cuMemMap / cuMemUnmap / cuMemRelease /
 *             cuMemAddressFree, and a device view of the pinned host allocation
 *             (cuMemHostGetDevicePointer_v2).
 * With a second argument "host", every host-memory allocator is also called at every ABI
 * (cuMemAllocManaged, cuMemAllocHost 2.0 and 3.2, cuMemHostAlloc, cuMemHostRegister 4.0 and 6.5),
 * 64 KiB each, and cuMemCreate of 2 MiB on the host location, printing "NAME@VERSION RESULT", and freed again when it succeeded.
 * With "arrays", CUDA arrays are created through the same door: 1D (1000 x float4 = 16,000 B),
 * 2D (64 x 32 x uchar = 2,048 B), 3D (16 x 16 x 8 x half2 = 8,192 B), layered (32 x 32, 4 layers,
 * float = 16,384 B) and a mipmapped array (64 x 64 uchar4, 3 levels = 21,504 B); all are destroyed
 * except the 3D one (8,192 B, a planted leak).
 * With "pools", stream-ordered allocations from host-located pools: a pool created on the host
 * location (64 KiB from it), CUDA 13's default host pool (32 KiB), the host pool made device 0's
 * current pool (cuMemAllocAsync of 16 KiB), then the device's default pool again through
 * cuMemSetMemPool (8 KiB, device memory); everything is freed. Prints each result.
 * With "graph", a graph with a 256 KiB memory allocation node and a free node for it, and a second
 * 128 KiB allocation node never freed (graph memory the program keeps); with "ipc", a 512 KiB
 * allocation shared through cuIpcGetMemHandle and opened again (as a second process would), then
 * closed; the shared allocation itself is freed. With "extmem", external memory of 1 MiB imported,
 * a 256 KiB buffer mapped from it and freed with cuMemFree, the import destroyed.
 * Mode "vmm3" (NVIDIA's vectorAddMMAP pattern): three 2 MiB physical allocations mapped side by
 * side into one reservation, each released right after it is mapped; all unmapped at the end
 * (the memory lives until then: peak 1 + 6 MiB); then a fourth mapped, released and never
 * unmapped (a 2 MiB leak).
 * Mode "vmmgrow" (PyTorch's expandable segments, issue 23): one 1 GiB reservation grown by 2 MiB
 * physical chunks, each created and mapped, until cuMemCreate fails (the device's memory is
 * VSP_FAKE_DEVICE_MEM); then every chunk is unmapped and released again, as PyTorch does when the
 * request fails. Prints the number of chunks and the failing call's result.
 * Each mode allocates 1 MiB + 2 MiB device memory, frees the 2 MiB, allocates 64 KiB of pinned
 * host memory and frees it; so a trace shows 1 MiB of device memory live at exit. */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef CUresult (*gpa2_t)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
typedef CUresult (*gpa1_t)(const char *, void **, int, cuuint64_t);

static void *h;
static gpa2_t gpa2;
static gpa1_t gpa1;
static const char *mode;

static void *get(const char *base, const char *exported, int version)
{
    void *p = NULL;
    if (!strcmp(mode, "gpa") || !strncmp(mode, "vmm", 3)) {
        CUdriverProcAddressQueryResult st;
        if (gpa2(base, &p, version, 0, &st) != CUDA_SUCCESS)
            return NULL;
    } else if (!strcmp(mode, "legacy")) {
        if (gpa1(base, &p, version, 0) != CUDA_SUCCESS)
            return NULL;
    } else {
        p = dlsym(h, exported);
    }
    return p;
}

/* The virtual-memory calls both vmm modes make, through the mode's way in. */
struct vmm_api {
    CUresult (*create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
    CUresult (*release)(CUmemGenericAllocationHandle);
    CUresult (*reserve)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
    CUresult (*map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
    CUresult (*unmap)(CUdeviceptr, size_t);
};

/* Pinned device memory of device 0, as the vmm modes create it. */
static CUmemAllocationProp device_prop(void)
{
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    return prop;
}

/* 0, or -1 when one of them is not found. */
static int get_vmm(struct vmm_api *v)
{
    v->create = get("cuMemCreate", "cuMemCreate", 10020);
    v->release = get("cuMemRelease", "cuMemRelease", 10020);
    v->reserve = get("cuMemAddressReserve", "cuMemAddressReserve", 10020);
    v->map = get("cuMemMap", "cuMemMap", 10020);
    v->unmap = get("cuMemUnmap", "cuMemUnmap", 10020);
    return v->create && v->release && v->reserve && v->map && v->unmap ? 0 : -1;
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "gpa";
    h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "no libcuda.so.1: %s\n", dlerror());
        return 2;
    }
    gpa2_t first = (gpa2_t)dlsym(h, "cuGetProcAddress_v2");
    if (!first)
        return 2;
    CUdriverProcAddressQueryResult st;
    void *p = NULL;
    first("cuGetProcAddress", &p, 12000, 0, &st);
    gpa2 = (gpa2_t)p;
    gpa1 = (gpa1_t)dlsym(h, "cuGetProcAddress");
    CUresult (*init)(unsigned) = get("cuInit", "cuInit", 2000);
    CUresult (*alloc)(CUdeviceptr *, size_t) = get("cuMemAlloc", "cuMemAlloc_v2", 3020);
    CUresult (*dfree)(CUdeviceptr) = get("cuMemFree", "cuMemFree_v2", 3020);
    CUresult (*halloc)(void **, size_t, unsigned) = get("cuMemHostAlloc", "cuMemHostAlloc", 2020);
    CUresult (*hfree)(void *) = get("cuMemFreeHost", "cuMemFreeHost", 2000);
    CUresult (*devget)(CUdevice *, int) = get("cuDeviceGet", "cuDeviceGet", 2000);
    CUresult (*retain)(CUcontext *, CUdevice) = get("cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain", 7000);
    CUresult (*setcur)(CUcontext) = get("cuCtxSetCurrent", "cuCtxSetCurrent", 4000);
    if (!init || !alloc || !dfree || !halloc || !hfree || !devget || !retain || !setcur) {
        fprintf(stderr, "lookup failed\n");
        return 2;
    }
    CUdevice dev;
    CUcontext ctx;
    printf("init %d\n", init(0));
    printf("dev %d\n", devget(&dev, 0));
    int rr = retain(&ctx, dev); /* before setcur reads ctx (argument order is unspecified) */
    printf("ctx %d %d\n", rr, setcur(ctx));
    CUdeviceptr a, b;
    void *host;
    printf("alloc %d\n", alloc(&a, 1 << 20));
    printf("alloc %d\n", alloc(&b, 2 << 20));
    printf("free %d\n", dfree(b));
    printf("hostalloc %d\n", halloc(&host, 65536, 0));
    if (argc > 2 && !strcmp(argv[2], "extmem")) {
        CUresult (*import)(CUexternalMemory *, const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *) =
            get("cuImportExternalMemory", "cuImportExternalMemory", 10000);
        CUresult (*buffer)(CUdeviceptr *, CUexternalMemory, const CUDA_EXTERNAL_MEMORY_BUFFER_DESC *) =
            get("cuExternalMemoryGetMappedBuffer", "cuExternalMemoryGetMappedBuffer", 10000);
        CUresult (*destroy)(CUexternalMemory) = get("cuDestroyExternalMemory", "cuDestroyExternalMemory", 10000);
        if (!import || !buffer || !destroy)
            return 2;
        CUDA_EXTERNAL_MEMORY_HANDLE_DESC hd;
        memset(&hd, 0, sizeof hd);
        hd.type = CU_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD;
        hd.handle.fd = -1;
        hd.size = 1 << 20;
        CUDA_EXTERNAL_MEMORY_BUFFER_DESC bd;
        memset(&bd, 0, sizeof bd);
        bd.size = 256 << 10;
        CUexternalMemory ext;
        CUdeviceptr buf;
        printf("import %d\n", import(&ext, &hd));
        printf("buffer %d\n", buffer(&buf, ext, &bd));
        printf("freebuffer %d\n", dfree(buf));
        printf("destroy %d\n", destroy(ext));
    }
    if (!strcmp(mode, "vmm3")) {
        struct vmm_api v;
        if (get_vmm(&v) < 0)
            return 2;
        CUmemAllocationProp prop = device_prop();
        size_t chunk = 2 << 20;
        CUdeviceptr va, va2;
        printf("reserve %d\n", v.reserve(&va, 3 * chunk, 0, 0, 0));
        for (int i = 0; i < 3; i++) {
            CUmemGenericAllocationHandle mh;
            CUresult c1 = v.create(&mh, chunk, &prop, 0);
            CUresult c2 = v.map(va + (CUdeviceptr)i * chunk, chunk, 0, mh, 0);
            printf("create %d map %d release %d\n", c1, c2, v.release(mh));
        }
        for (int i = 0; i < 3; i++)
            printf("unmap %d\n", v.unmap(va + (CUdeviceptr)i * chunk, chunk));
        CUmemGenericAllocationHandle kept;
        printf("reserve %d\n", v.reserve(&va2, chunk, 0, 0, 0));
        CUresult c1 = v.create(&kept, chunk, &prop, 0);
        CUresult c2 = v.map(va2, chunk, 0, kept, 0);
        printf("create %d map %d release %d\n", c1, c2, v.release(kept));
    }
    if (!strcmp(mode, "vmmgrow")) {
        struct vmm_api v;
        if (get_vmm(&v) < 0)
            return 2;
        CUmemAllocationProp prop = device_prop();
        enum { CHUNKS_MAX = 512 };
        static CUmemGenericAllocationHandle chunks[CHUNKS_MAX];
        size_t chunk = 2 << 20;
        CUdeviceptr va;
        printf("reserve %d\n", v.reserve(&va, CHUNKS_MAX * chunk, 0, 0, 0));
        int n = 0;
        CUresult rc = CUDA_SUCCESS;
        while (n < CHUNKS_MAX && (rc = v.create(&chunks[n], chunk, &prop, 0)) == CUDA_SUCCESS) {
            if (v.map(va + (CUdeviceptr)n * chunk, chunk, 0, chunks[n], 0) != CUDA_SUCCESS)
                return 2;
            n++;
        }
        printf("grown %d chunks, then create %d\n", n, rc);
        int bad = 0;
        for (int i = n; i-- > 0;)
            bad += v.unmap(va + (CUdeviceptr)i * chunk, chunk) != CUDA_SUCCESS || v.release(chunks[i]) != CUDA_SUCCESS;
        printf("unmapped and released, %d failed\n", bad);
    }
    if (!strcmp(mode, "vmm")) { /* a device view of the pinned memory */
        CUresult (*view)(CUdeviceptr *, void *, unsigned) =
            get("cuMemHostGetDevicePointer", "cuMemHostGetDevicePointer_v2", 3020);
        CUdeviceptr dv;
        printf("view %d\n", view ? view(&dv, host, 0) : -1);
    }
    printf("hostfree %d\n", hfree(host));
    if (argc > 2 && !strcmp(argv[2], "host")) {
        CUresult (*managed)(CUdeviceptr *, size_t, unsigned) = get("cuMemAllocManaged", "cuMemAllocManaged", 6000);
        CUresult (*ah1)(void **, unsigned) = get("cuMemAllocHost", "cuMemAllocHost", 2000);
        CUresult (*ah2)(void **, size_t) = get("cuMemAllocHost", "cuMemAllocHost_v2", 3020);
        CUresult (*reg1)(void *, size_t, unsigned) = get("cuMemHostRegister", "cuMemHostRegister", 4000);
        CUresult (*reg2)(void *, size_t, unsigned) = get("cuMemHostRegister", "cuMemHostRegister_v2", 6050);
        CUresult (*unreg)(void *) = get("cuMemHostUnregister", "cuMemHostUnregister", 4000);
        if (!managed || !ah1 || !ah2 || !reg1 || !reg2 || !unreg)
            return 2;
        static char buf1[65536] __attribute__((aligned(4096))), buf2[65536] __attribute__((aligned(4096)));
        CUdeviceptr m = 0;
        void *p1 = NULL, *p2 = NULL, *p3 = NULL;
        CUresult r;
        printf("cuMemAllocManaged@6000 %d\n", r = managed(&m, 65536, CU_MEM_ATTACH_GLOBAL));
        if (!r)
            dfree(m);
        printf("cuMemAllocHost@2000 %d\n", r = ah1(&p1, 65536));
        if (!r)
            hfree(p1);
        printf("cuMemAllocHost@3020 %d\n", r = ah2(&p2, 65536));
        if (!r)
            hfree(p2);
        printf("cuMemHostAlloc@2020 %d\n", r = halloc(&p3, 65536, 0));
        if (!r)
            hfree(p3);
        printf("cuMemHostRegister@4000 %d\n", r = reg1(buf1, sizeof buf1, 0));
        if (!r)
            unreg(buf1);
        printf("cuMemHostRegister@6050 %d\n", r = reg2(buf2, sizeof buf2, 0));
        if (!r)
            unreg(buf2);
        CUresult (*create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long) =
            get("cuMemCreate", "cuMemCreate", 10020);
        CUresult (*release)(CUmemGenericAllocationHandle) = get("cuMemRelease", "cuMemRelease", 10020);
        if (!create || !release)
            return 2;
        CUmemAllocationProp prop;
        memset(&prop, 0, sizeof prop);
        prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
        prop.location.type = CU_MEM_LOCATION_TYPE_HOST;
        CUmemGenericAllocationHandle mh;
        printf("cuMemCreate@host %d\n", r = create(&mh, 2 << 20, &prop, 0));
        if (!r)
            release(mh);
    }
    if (argc > 2 && !strcmp(argv[2], "arrays")) {
        CUresult (*a1)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *) = get("cuArrayCreate", "cuArrayCreate_v2", 3020);
        CUresult (*a3)(CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *) = get("cuArray3DCreate", "cuArray3DCreate_v2", 3020);
        CUresult (*ad)(CUarray) = get("cuArrayDestroy", "cuArrayDestroy", 2000);
        CUresult (*mc)(CUmipmappedArray *, const CUDA_ARRAY3D_DESCRIPTOR *, unsigned) =
            get("cuMipmappedArrayCreate", "cuMipmappedArrayCreate", 5000);
        CUresult (*md)(CUmipmappedArray) = get("cuMipmappedArrayDestroy", "cuMipmappedArrayDestroy", 5000);
        if (!a1 || !a3 || !ad || !mc || !md)
            return 2;
        CUarray one, two, three, layered;
        CUmipmappedArray mip;
        CUDA_ARRAY_DESCRIPTOR d1 = {.Width = 1000, .Height = 0, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 4};
        CUDA_ARRAY_DESCRIPTOR d2 = {.Width = 64, .Height = 32, .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 1};
        CUDA_ARRAY3D_DESCRIPTOR d3 = {.Width = 16, .Height = 16, .Depth = 8, .Format = CU_AD_FORMAT_HALF, .NumChannels = 2};
        CUDA_ARRAY3D_DESCRIPTOR dl = {.Width = 32, .Height = 32, .Depth = 4, .Format = CU_AD_FORMAT_FLOAT,
                                      .NumChannels = 1, .Flags = CUDA_ARRAY3D_LAYERED};
        CUDA_ARRAY3D_DESCRIPTOR dm = {.Width = 64, .Height = 64, .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4};
        printf("array1d %d\n", a1(&one, &d1));
        printf("array2d %d\n", a1(&two, &d2));
        printf("array3d %d\n", a3(&three, &d3));
        printf("layered %d\n", a3(&layered, &dl));
        printf("mipmapped %d\n", mc(&mip, &dm, 3));
        printf("destroy %d %d %d %d\n", ad(one), ad(two), ad(layered), md(mip));
    }
    if (argc > 2 && !strcmp(argv[2], "pools")) {
        CUresult (*pcreate)(CUmemoryPool *, const CUmemPoolProps *) = get("cuMemPoolCreate", "cuMemPoolCreate", 11020);
        CUresult (*pdestroy)(CUmemoryPool) = get("cuMemPoolDestroy", "cuMemPoolDestroy", 11020);
        CUresult (*fromp)(CUdeviceptr *, size_t, CUmemoryPool, CUstream) =
            get("cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync", 11020);
        CUresult (*aasync)(CUdeviceptr *, size_t, CUstream) = get("cuMemAllocAsync", "cuMemAllocAsync", 11020);
        CUresult (*fasync)(CUdeviceptr, CUstream) = get("cuMemFreeAsync", "cuMemFreeAsync", 11020);
        CUresult (*setpool)(CUdevice, CUmemoryPool) = get("cuDeviceSetMemPool", "cuDeviceSetMemPool", 11020);
        CUresult (*defpool)(CUmemoryPool *, CUmemLocation *, CUmemAllocationType) =
            get("cuMemGetDefaultMemPool", "cuMemGetDefaultMemPool", 13000);
        CUresult (*setmem)(CUmemLocation *, CUmemAllocationType, CUmemoryPool) =
            get("cuMemSetMemPool", "cuMemSetMemPool", 13000);
        if (!pcreate || !pdestroy || !fromp || !aasync || !fasync || !setpool || !defpool || !setmem)
            return 2;
        CUmemPoolProps props;
        memset(&props, 0, sizeof props);
        props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
        props.location.type = CU_MEM_LOCATION_TYPE_HOST;
        CUmemoryPool hp = NULL, dhp = NULL, dp = NULL;
        CUdeviceptr x;
        CUresult r = pcreate(&hp, &props);
        printf("hostpool %d\n", r);
        if (!r) {
            printf("fromhostpool %d\n", r = fromp(&x, 65536, hp, 0));
            if (!r)
                fasync(x, 0);
        }
        CUmemLocation hloc = {.type = CU_MEM_LOCATION_TYPE_HOST}, dloc = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0};
        printf("defaulthostpool %d\n", defpool(&dhp, &hloc, CU_MEM_ALLOCATION_TYPE_PINNED));
        printf("fromdefaulthostpool %d\n", r = fromp(&x, 32768, dhp, 0));
        if (!r)
            fasync(x, 0);
        printf("setcurrent %d\n", setpool(0, dhp));
        printf("async %d\n", r = aasync(&x, 16384, 0));
        if (!r)
            fasync(x, 0);
        printf("defaultdevicepool %d\n", defpool(&dp, &dloc, CU_MEM_ALLOCATION_TYPE_PINNED));
        printf("setmempool %d\n", setmem(&dloc, CU_MEM_ALLOCATION_TYPE_PINNED, dp));
        printf("async %d\n", r = aasync(&x, 8192, 0));
        if (!r)
            fasync(x, 0);
        if (hp)
            printf("destroy %d\n", pdestroy(hp));
    }
    if (argc > 2 && !strcmp(argv[2], "graph")) {
        CUresult (*gcreate)(CUgraph *, unsigned) = get("cuGraphCreate", "cuGraphCreate", 10000);
        CUresult (*gdestroy)(CUgraph) = get("cuGraphDestroy", "cuGraphDestroy", 10000);
        CUresult (*anode)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUDA_MEM_ALLOC_NODE_PARAMS *) =
            get("cuGraphAddMemAllocNode", "cuGraphAddMemAllocNode", 11040);
        CUresult (*fnode)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUdeviceptr) =
            get("cuGraphAddMemFreeNode", "cuGraphAddMemFreeNode", 11040);
        if (!gcreate || !gdestroy || !anode || !fnode)
            return 2;
        CUgraph g;
        CUgraphNode n1, n2, n3;
        CUDA_MEM_ALLOC_NODE_PARAMS p1, p2;
        memset(&p1, 0, sizeof p1);
        p1.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
        p1.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        p1.bytesize = 256 << 10;
        p2 = p1;
        p2.bytesize = 128 << 10;
        printf("graph %d\n", gcreate(&g, 0));
        printf("allocnode %d\n", anode(&n1, g, NULL, 0, &p1));
        printf("freenode %d\n", fnode(&n2, g, &n1, 1, p1.dptr));
        printf("allocnode %d\n", anode(&n3, g, NULL, 0, &p2));
        printf("graphdestroy %d\n", gdestroy(g));
    }
    if (argc > 2 && !strcmp(argv[2], "ipc")) {
        CUresult (*gethandle)(CUipcMemHandle *, CUdeviceptr) = get("cuIpcGetMemHandle", "cuIpcGetMemHandle", 4010);
        CUresult (*open_)(CUdeviceptr *, CUipcMemHandle, unsigned) =
            get("cuIpcOpenMemHandle", "cuIpcOpenMemHandle_v2", 11000);
        CUresult (*close_)(CUdeviceptr) = get("cuIpcCloseMemHandle", "cuIpcCloseMemHandle", 4010);
        if (!gethandle || !open_ || !close_)
            return 2;
        CUdeviceptr shared, opened;
        CUipcMemHandle ih;
        printf("alloc %d\n", alloc(&shared, 512 << 10));
        printf("gethandle %d\n", gethandle(&ih, shared));
        printf("open %d\n", open_(&opened, ih, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
        printf("close %d\n", close_(opened));
        printf("free %d\n", dfree(shared));
    }
    if (!strcmp(mode, "vmm")) {
        struct vmm_api v;
        int missing = get_vmm(&v) < 0;
        CUresult (*afree)(CUdeviceptr, size_t) = get("cuMemAddressFree", "cuMemAddressFree", 10020);
        if (missing || !afree)
            return 2;
        CUmemAllocationProp prop = device_prop();
        CUmemGenericAllocationHandle mh;
        CUdeviceptr va;
        size_t sz = 2 << 20;
        printf("create %d\n", v.create(&mh, sz, &prop, 0));
        printf("reserve %d\n", v.reserve(&va, sz, 0, 0, 0));
        printf("map %d\n", v.map(va, sz, 0, mh, 0));
        printf("unmap %d\n", v.unmap(va, sz));
        printf("release %d\n", v.release(mh));
        printf("addrfree %d\n", afree(va, sz));
    }
    return 0;
}
