/* Integration tests: every way a program can reach the driver's allocation entry points —
 * cuGetProcAddress_v2 as CUDA 13's runtime uses it (including the pointer handed out for
 * "cuGetProcAddress" itself), the legacy cuGetProcAddress, dlsym on a libcuda handle,
 * cudaGetDriverEntryPoint*, and the virtual-memory calls. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define MiB (1024ull * 1024ull)

static void run_mode(const char *prog, const char *mode, struct trace_summary *s)
{
    char *dir = th_tmpdir();
    char out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/d.trace", dir);
    snprintf(path, sizeof path, "%s/d.trace", dir);
    const char *argv[] = {prog, mode, NULL};
    const char *env[] = {out, NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_eq(shim.code, 0, "%s", shim.err);
    cr_assert_str_eq(shim.out, plain.out);
    th_summarize(path, s, NULL);
    cr_assert(s->ok, "%s", s->error);
}

static void check_driver_trace(const struct trace_summary *s)
{
    cr_assert_eq(s->by_api[VSP_API_cuMemAlloc_v2], 2);
    cr_assert_eq(s->by_api[VSP_API_cuMemFree_v2], 1);
    cr_assert_eq(s->by_api[VSP_API_cuMemHostAlloc], 1);
    cr_assert_eq(s->by_api[VSP_API_cuMemFreeHost], 1);
    cr_assert_eq(s->live_device_bytes, 1 * MiB);
    cr_assert_eq(s->peak_device_bytes, 3 * MiB);
    cr_assert(s->complete);
}

Test(shim_driver, through_cuGetProcAddress_v2_like_the_runtime)
{
    struct trace_summary s;
    run_mode(VSP_PROGS "/prog_driver", "gpa", &s);
    check_driver_trace(&s);
}

Test(shim_driver, through_legacy_cuGetProcAddress)
{
    struct trace_summary s;
    run_mode(VSP_PROGS "/prog_driver", "legacy", &s);
    check_driver_trace(&s);
}

Test(shim_driver, through_dlsym_on_a_libcuda_handle)
{
    struct trace_summary s;
    run_mode(VSP_PROGS "/prog_driver", "dlsym", &s);
    check_driver_trace(&s);
}

Test(shim_driver, virtual_memory_physical_allocations_and_mappings)
{
    struct trace_summary s;
    run_mode(VSP_PROGS "/prog_driver", "vmm", &s);
    cr_assert_eq(s.by_api[VSP_API_cuMemCreate], 1);
    cr_assert_eq(s.by_api[VSP_API_cuMemMap], 1);
    cr_assert_eq(s.by_api[VSP_API_cuMemUnmap], 1);
    cr_assert_eq(s.by_api[VSP_API_cuMemRelease], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_PHYSICAL], 1);
    cr_assert_eq(s.by_api[VSP_API_cuMemAddressReserve], 1, "address reservations are in the trace");
    cr_assert_eq(s.by_api[VSP_API_cuMemAddressFree], 1);
    cr_assert_eq(s.by_api[VSP_API_cuMemHostGetDevicePointer_v2], 1, "and device views of host memory");
    cr_assert_eq(s.live_device_bytes, 1 * MiB, "physical memory was released");
    cr_assert_eq(s.live_count, 1, "a reservation or a view holds no memory");
}

/* CUDA arrays at the driver layer (how NVIDIA's runtime creates them, static and shared), sized
 * from their descriptors; prog_driver's "arrays" block. */
static void arrays_case(const char *mode)
{
    char *dir = th_tmpdir(), out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/a.trace", dir);
    snprintf(path, sizeof path, "%s/a.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_driver", mode, "arrays", NULL};
    const char *env[] = {out, NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_str_eq(shim.out, plain.out);
    cr_assert_not_null(strstr(plain.out, "array1d 0\narray2d 0\narray3d 0\nlayered 0\nmipmapped 0\ndestroy 0 0 0 0\n"),
                       "%s", plain.out);
    struct trace_summary s;
    uint64_t probes[] = {16000, 2048, 8192, 16384, 21504, 0};
    th_summarize(path, &s, probes);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.by_api[VSP_API_cuArrayCreate_v2], 2);
    cr_assert_eq(s.by_api[VSP_API_cuArray3DCreate_v2], 2);
    cr_assert_eq(s.by_api[VSP_API_cuMipmappedArrayCreate], 1);
    cr_assert_eq(s.by_api[VSP_API_cuArrayDestroy], 3);
    cr_assert_eq(s.by_api[VSP_API_cuMipmappedArrayDestroy], 1);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(s.count_size[i], 1, "an array of %llu bytes (1D, 2D, 3D, layered, mipmapped)",
                     (unsigned long long)probes[i]);
    cr_assert_eq(s.by_memory[VSP_MEM_ARRAY], 5);
    cr_assert_eq(s.live_device_bytes, 1 * MiB + 8192, "the 3D array is the one left");
}

Test(shim_driver, arrays_through_cuGetProcAddress_v2) { arrays_case("gpa"); }
Test(shim_driver, arrays_through_legacy_cuGetProcAddress) { arrays_case("legacy"); }
Test(shim_driver, arrays_through_dlsym) { arrays_case("dlsym"); }

/* Host-located memory pools (CUDA 12.2+, 13): allocations from them are host memory (host_pool),
 * and VRAMSPY_ENFORCE=vram-only refuses the pool, its use, and making it a device's current pool. */
static void pools_case(const char *mode, int enforce)
{
    char *dir = th_tmpdir(), out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/p.trace", dir);
    snprintf(path, sizeof path, "%s/p.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_driver", mode, "pools", NULL};
    const char *env[] = {out, enforce ? "VRAMSPY_ENFORCE=vram-only" : NULL, NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_str_eq(plain.out + (strstr(plain.out, "hostpool") - plain.out),
                     "hostpool 0\nfromhostpool 0\ndefaulthostpool 0\nfromdefaulthostpool 0\nsetcurrent 0\nasync 0\n"
                     "defaultdevicepool 0\nsetmempool 0\nasync 0\ndestroy 0\n");
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    if (!enforce) {
        cr_assert_str_eq(shim.out, plain.out, "%s", shim.err);
        cr_assert_eq(s.by_memory[VSP_MEM_HOST_POOL], 3, "64 KiB, 32 KiB and 16 KiB from host pools");
        cr_assert_eq(s.denied, 0);
    } else {
        cr_assert_not_null(strstr(shim.out, "hostpool 2\ndefaulthostpool 0\nfromdefaulthostpool 2\nsetcurrent 2\n"
                                            "async 0\ndefaultdevicepool 0\nsetmempool 0\nasync 0\n"),
                           "refused with the out-of-memory error: %s", shim.out);
        cr_assert_eq(s.by_memory[VSP_MEM_HOST_POOL], 0);
        cr_assert_eq(s.denied, 4, "the program's own pinned 64 KiB, the pool, the allocation from the default "
                                  "host pool, making it current");
    }
    cr_assert_eq(s.live_count, 1, "the program's own 1 MiB; every pool allocation was freed");
}

Test(shim_driver, host_pools_through_cuGetProcAddress_v2) { pools_case("gpa", 0); }
Test(shim_driver, host_pools_through_dlsym) { pools_case("dlsym", 0); }
Test(shim_driver, host_pools_refused_under_enforcement_through_cuGetProcAddress_v2) { pools_case("gpa", 1); }
Test(shim_driver, host_pools_refused_under_enforcement_through_dlsym) { pools_case("dlsym", 1); }

static void extra_case(const char *mode, const char *what, const char *expect_out, struct trace_summary *s)
{
    char *dir = th_tmpdir(), out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/x.trace", dir);
    snprintf(path, sizeof path, "%s/x.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_driver", mode, what, NULL};
    const char *env[] = {out, NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_str_eq(shim.out, plain.out);
    cr_assert_not_null(strstr(plain.out, expect_out), "%s", plain.out);
    th_summarize(path, s, (const uint64_t[]){256 << 10, 128 << 10, 512 << 10, 0});
    cr_assert(s->ok, "%s", s->error);
}

static void graph_case(const char *mode)
{
    struct trace_summary s;
    extra_case(mode, "graph", "graph 0\nallocnode 0\nfreenode 0\nallocnode 0\ngraphdestroy 0\n", &s);
    cr_assert_eq(s.by_api[VSP_API_cuGraphAddMemAllocNode], 2);
    cr_assert_eq(s.by_api[VSP_API_cuGraphAddMemFreeNode], 1);
    cr_assert_eq(s.count_size[0], 1);
    cr_assert_eq(s.count_size[1], 1);
    cr_assert_eq(s.live_device_bytes, 1 * MiB + (128 << 10), "the graph's unfreed 128 KiB node stays");
}

Test(shim_driver, graph_memory_nodes_through_cuGetProcAddress_v2) { graph_case("gpa"); }
Test(shim_driver, graph_memory_nodes_through_dlsym) { graph_case("dlsym"); }

static void ipc_case(const char *mode)
{
    struct trace_summary s;
    extra_case(mode, "ipc", "alloc 0\ngethandle 0\nopen 0\nclose 0\nfree 0\n", &s);
    cr_assert_eq(s.by_api[VSP_API_cuIpcOpenMemHandle_v2], 1);
    cr_assert_eq(s.by_api[VSP_API_cuIpcCloseMemHandle], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_IMPORTED], 1);
    cr_assert_eq(s.count_size[2], 2, "the allocation and its imported mapping, both 512 KiB");
    cr_assert_eq(s.live_device_bytes, 1 * MiB, "imported memory is not this process's device memory");
    cr_assert_eq(s.live_count, 1, "the mapping was closed, the allocation freed");
}

Test(shim_driver, ipc_import_through_cuGetProcAddress_v2) { ipc_case("gpa"); }

static void extmem_case(const char *mode)
{
    struct trace_summary s;
    extra_case(mode, "extmem", "import 0\nbuffer 0\nfreebuffer 0\ndestroy 0\n", &s);
    cr_assert_eq(s.by_api[VSP_API_cuImportExternalMemory], 1);
    cr_assert_eq(s.by_api[VSP_API_cuExternalMemoryGetMappedBuffer], 1);
    cr_assert_eq(s.by_api[VSP_API_cuDestroyExternalMemory], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_IMPORTED], 2, "the import and its buffer");
    cr_assert_eq(s.live_device_bytes, 1 * MiB, "imported memory is not this process's device memory");
    cr_assert_eq(s.live_count, 1, "the buffer was freed with cuMemFree, the import destroyed");
}

Test(shim_driver, external_memory_through_cuGetProcAddress_v2) { extmem_case("gpa"); }
Test(shim_driver, external_memory_through_dlsym) { extmem_case("dlsym"); }
Test(shim_driver, ipc_import_through_dlsym) { ipc_case("dlsym"); }

Test(shim_driver, new_entry_points_reached_by_direct_linking)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_driver_linked", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(plain.code, 0, "every call succeeds: %s", plain.out);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    static const struct { int api, n; } want[] = {
        {VSP_API_cuArrayCreate_v2, 1}, {VSP_API_cuArray3DCreate_v2, 1}, {VSP_API_cuMipmappedArrayCreate, 1},
        {VSP_API_cuArrayDestroy, 2}, {VSP_API_cuMipmappedArrayDestroy, 1}, {VSP_API_cuMemAllocFromPoolAsync, 1},
        {VSP_API_cuGraphAddMemAllocNode, 1}, {VSP_API_cuGraphAddMemFreeNode, 1}, {VSP_API_cuIpcOpenMemHandle_v2, 1},
        {VSP_API_cuIpcCloseMemHandle, 1}, {VSP_API_cuImportExternalMemory, 1},
        {VSP_API_cuExternalMemoryGetMappedBuffer, 1}, {VSP_API_cuDestroyExternalMemory, 1},
        {VSP_API_cuMemAddressReserve, 1}, {VSP_API_cuMemAddressFree, 1}, {VSP_API_cuMemHostGetDevicePointer_v2, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(s.by_api[want[i].api], (uint64_t)want[i].n, "%s: %llu events", vsp_api_name(want[i].api),
                     (unsigned long long)s.by_api[want[i].api]);
    cr_assert_eq(s.live_count, 0, "everything was freed");
}

Test(shim_driver, through_cudaGetDriverEntryPoint)
{
    struct trace_summary s;
    run_mode(VSP_PROGS "/prog_entry", "", &s);
    cr_assert_eq(s.by_api[VSP_API_cuMemAlloc_v2], 2, "both entry-point pointers are hooks");
    cr_assert_eq(s.by_api[VSP_API_cuMemFree_v2], 1);
    cr_assert_eq(s.live_device_bytes, 1 * MiB);
}

/* Every host-memory allocator of the driver, at every ABI, through each way in: recorded as
 * host memory, and with VRAMSPY_ENFORCE=vram-only refused with CUDA_ERROR_OUT_OF_MEMORY (2)
 * without reaching the driver. */
static void check_host_apis(const char *mode)
{
    static const char *const calls[] = {"cuMemAllocManaged@6000", "cuMemAllocHost@2000", "cuMemAllocHost@3020",
                                        "cuMemHostAlloc@2020", "cuMemHostRegister@4000", "cuMemHostRegister@6050",
                                        "cuMemCreate@host"};
    char *dir = th_tmpdir(), out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/h.trace", dir);
    snprintf(path, sizeof path, "%s/h.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_driver", mode, "host", NULL};
    const char *env[] = {out, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char want[64];
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        snprintf(want, sizeof want, "%s 0\n", calls[i]);
        cr_assert_not_null(strstr(r.out, want), "%s: %s", mode, r.out);
    }
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.by_api[VSP_API_cuMemAllocHost], 1, "%s: the 2.0 ABI is recorded", mode);
    cr_assert_eq(s.by_api[VSP_API_cuMemHostRegister], 1, "%s: the 4.0 ABI is recorded", mode);
    cr_assert_eq(s.by_memory[VSP_MEM_MANAGED] + s.by_memory[VSP_MEM_HOST_PINNED] + s.by_memory[VSP_MEM_HOST_REGISTERED],
                 8, "%s: the seven and the basic sequence's cuMemHostAlloc", mode);
    /* enforced */
    const char *env2[] = {out, "VRAMSPY_ENFORCE=vram-only", NULL};
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/e.trace", dir);
    snprintf(path, sizeof path, "%s/e.trace", dir);
    cr_assert_eq(th_run(&r, argv, env2, 1, 0), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        snprintf(want, sizeof want, "%s 2\n", calls[i]);
        cr_assert_not_null(strstr(r.out, want), "%s: refused with CUDA_ERROR_OUT_OF_MEMORY: %s", mode, r.out);
    }
    cr_assert_not_null(strstr(r.out, "alloc 0\n"), "device memory is still allowed: %s", r.out);
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.denied, 8, "%s: each refusal recorded as denied", mode);
    cr_assert_eq(s.by_memory[VSP_MEM_MANAGED] + s.by_memory[VSP_MEM_HOST_PINNED] + s.by_memory[VSP_MEM_HOST_REGISTERED],
                 0, "%s: no host memory was allocated", mode);
}

Test(shim_driver, host_allocators_at_every_abi_recorded_and_enforced_through_cuGetProcAddress_v2)
{
    check_host_apis("gpa");
}

Test(shim_driver, host_allocators_at_every_abi_recorded_and_enforced_through_legacy_cuGetProcAddress)
{
    check_host_apis("legacy");
}

Test(shim_driver, host_allocators_at_every_abi_recorded_and_enforced_through_dlsym)
{
    check_host_apis("dlsym");
}
