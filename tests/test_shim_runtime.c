/* Integration tests: the shim preloaded into programs that use the CUDA runtime (the test-double
 * libcudart.so.13 over the test-double libcuda.so.1, and NVIDIA's own runtime without a driver).
 * Every test checks both that the program behaved exactly as without the shim and what the trace
 * recorded. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "report/read/trace_reader.h"

#define MiB (1024ull * 1024ull)


/* prog_runtime MODE without and with the shim (same output and status), its one trace read. */
static void run_traced(const char *mode, const char *const *env, struct run_result *plain, struct trace_summary *s)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", mode, NULL};
    static struct run_result shim;
    th_run_pair(plain, &shim, argv, dir, env);
    th_one_trace(dir, s, NULL, NULL);
}

Test(shim_runtime, leaks_hosts_and_every_family_are_recorded_once)
{
    char *dir = th_tmpdir();
    struct run_result plain, shim;
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(shim.code, 0, "%s", shim.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert(s.complete);
    cr_assert(s.has_end);
    /* one event per runtime call; the driver calls underneath are not recorded */
    cr_assert_eq(s.by_api[VSP_API_cuMemAlloc_v2] + s.by_api[VSP_API_cuMemHostAlloc] + s.by_api[VSP_API_cuMemFree_v2],
                 0, "driver calls made by the runtime must not be recorded");
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 3);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocManaged], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocHost], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaHostAlloc], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaHostRegister], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocPitch], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc3D], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocArray], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocAsync], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocFromPoolAsync], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 5, "4 good frees + 1 bad");
    cr_assert_eq(s.by_api[VSP_API_cudaFreeHost], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaHostUnregister], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaFreeArray], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaFreeAsync], 2);
    cr_assert_eq(s.by_memory[VSP_MEM_MANAGED], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_HOST_PINNED], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_HOST_MAPPED], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_HOST_REGISTERED], 1);
    cr_assert_eq(s.by_memory[VSP_MEM_ARRAY], 1);
    cr_assert_eq(s.frees_failed, 1, "the free of an unknown pointer failed, and is recorded");
    cr_assert_eq(s.live_count, 3, "leaks: 1 MiB + 3 MiB device, 64 KiB pinned");
    cr_assert_eq(s.live_bytes, 4 * MiB + 64 * 1024);
    cr_assert_eq(s.live_device_bytes, 4 * MiB);
    cr_assert_eq(s.end.live_allocations, 3, "the shim's own count agrees");
    cr_assert_eq(s.end.live_bytes, 4 * MiB + 64 * 1024);
    cr_assert_eq(s.stack_refs_missing, 0);
    cr_assert_gt(s.stacks, 0);
    cr_assert_gt(s.modules, 2);
    cr_assert_str_eq(s.exe, VSP_PROGS "/prog_runtime");
    cr_assert_eq(s.argc, 2);
    /* the exit summary */
    cr_assert_not_null(strstr(shim.err, "live at exit: 3 allocations, 4.1 MiB"), "summary: %s", shim.err);
    cr_assert_not_null(strstr(shim.err, "analyze: "), "summary: %s", shim.err);
}

Test(shim_runtime, out_of_memory_records_free_and_total)
{
    char *dir = th_tmpdir();
    struct run_result plain, shim;
    const char *argv[] = {VSP_PROGS "/prog_runtime", "oom", NULL};
    const char *env[] = {"VSP_FAKE_DEVICE_MEM=64M", NULL};
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_eq(shim.code, 0);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.oom_events, 1);
    cr_assert_eq(s.oom_with_meminfo, 1, "free/total memory recorded at the failure");
    cr_assert_not_null(strstr(shim.err, "1 failed"), "%s", shim.err);
}

Test(shim_runtime, fragmentation_failure_has_enough_free_memory)
{
    char *dir = th_tmpdir();
    struct run_result plain, shim;
    const char *argv[] = {VSP_PROGS "/prog_runtime", "frag", NULL};
    const char *env[] = {"VSP_FAKE_DEVICE_MEM=64M", NULL};
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_eq(shim.code, 0, "%s", shim.err);
    cr_assert_not_null(strstr(shim.out, "fallback 0"));
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_geq(s.oom_with_meminfo, 1);
    cr_assert_eq(s.by_memory[VSP_MEM_MANAGED], 1, "the fallback to managed memory is recorded");
    cr_assert_eq(s.live_count, 0);
}

Test(shim_runtime, nvidia_runtime_without_driver_fails_the_same_and_is_recorded)
{
    if (access(VSP_PROGS "/prog_runtime_nv", X_OK) != 0)
        cr_skip_test("NVIDIA's libcudart.so.13 is not installed (CUDA_HOME)");
    char *dir = th_tmpdir();
    char out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/nv.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime_nv", "nodrv", NULL};
    const char *env[] = {out, NULL};
    struct run_result plain, shim;
    th_run_both(&plain, &shim, argv, env, 1);
    cr_assert_not_null(strstr(plain.out, "malloc 35"), "no driver: cudaErrorInsufficientDriver (%s)", plain.out);
    struct trace_summary s;
    char path[4200];
    snprintf(path, sizeof path, "%s/nv.trace", dir);
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 2);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocHost], 1);
    cr_assert_eq(s.allocs_failed, 3);
    cr_assert_eq(s.allocs_ok, 0);
}

Test(shim_runtime, nvcc_static_runtime_reaches_driver_through_hooked_lookup)
{
    if (access(VSP_PROGS "/prog_static", X_OK) != 0)
        cr_skip_test("nvcc is not installed (CUDA_HOME)");
    char *dir = th_tmpdir();
    char out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/st.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_static", NULL};
    /* Without a driver: nothing reaches the shim, and nothing changes. */
    struct run_result plain, shim;
    const char *env[] = {out, NULL};
    th_run_both(&plain, &shim, argv, env, 1);
    cr_assert_not_null(strstr(plain.out, "malloc 35"), "%s", plain.out);
    /* With the test-double driver on the library path, NVIDIA's static runtime finds it by
     * dlopen + cuGetProcAddress_v2, and every allocation entry point it asks for is the shim's. */
    const char *env2[] = {out, "VRAMSPY_DEBUG=1", NULL};
    th_run_both(&plain, &shim, argv, env2, 0);
    cr_assert_not_null(strstr(shim.err, "cuGetProcAddress(cuGetProcAddress, 12000, 0): hooked as cuGetProcAddress_v2"),
                       "%s", shim.err);
    cr_assert_not_null(strstr(shim.err, "cuGetProcAddress(cuMemAlloc, 3020, 0): hooked as cuMemAlloc_v2"), "%s",
                       shim.err);
    cr_assert_not_null(strstr(shim.err, "hooked as cuMemAllocAsync_ptsz"), "%s", shim.err);
}

Test(shim_runtime, enforce_vram_only_denies_host_memory_and_report_marks_it)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/e.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VRAMSPY_ENFORCE=vram-only", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "e.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    /* every host or managed allocation failed with out-of-memory; device ones went through */
    cr_assert_not_null(strstr(r.out, "managed 2\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "host 2\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "hostalloc 2\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "register 2\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "malloc 0\n"), "%s", r.out);
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.by_memory[VSP_MEM_MANAGED] + s.by_memory[VSP_MEM_HOST_PINNED] + s.by_memory[VSP_MEM_HOST_MAPPED] +
                     s.by_memory[VSP_MEM_HOST_REGISTERED], 0, "nothing of host memory was allocated");
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s/vramspy-report' --format json --fail-on host-fallback '%s' > '%s/e.json'",
             VSP_BUILD_DIR, path, dir);
    cr_assert_eq(WEXITSTATUS(system(cmd)), 1, "denied fallbacks are still host_fallback findings");
    snprintf(cmd, sizeof cmd, "grep -c '\"denied\": true' '%s/e.json' | grep -qx 4", dir);
    cr_assert_eq(system(cmd), 0, "four denied host_fallback findings");
    /* a bad value warns and enforces nothing */
    const char *env2[] = {"VRAMSPY_ENFORCE=strict", NULL};
    th_run_traced(&r, argv, dir, "e2.trace", env2);
    cr_assert_not_null(strstr(r.err, "VRAMSPY_ENFORCE=strict"), "%s", r.err);
    cr_assert_not_null(strstr(r.out, "managed 0\n"));
}

Test(shim_runtime, out_of_memory_breakdown_on_stderr_at_the_failing_call)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", "frag", NULL};
    const char *env[] = {"VSP_FAKE_DEVICE_MEM=64M", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "o.trace", env);
    cr_assert_eq(r.code, 0);
    const char *b = strstr(r.err, "vramspy: out of memory: cudaMalloc of 6.0 MiB failed; device free 32.0 MiB of 64.0 MiB: "
                                  "looks like FRAGMENTATION");
    cr_assert_not_null(b, "%s", r.err);
    cr_assert_not_null(strstr(b, "live device memory: 32.0 MiB in 8 allocations\nvramspy: the failing call: frag (prog_runtime.c:"),
                       "%s", r.err);
    cr_assert_not_null(strstr(b, "\nvramspy: top call sites:\n"), "%s", r.err);
    cr_assert_not_null(strstr(b, "32.0 MiB in 8 allocations  "), "%s", r.err);
    cr_assert_not_null(strstr(b, "(prog_runtime.c:"), "call sites are symbolised in the process: %s", r.err);
    cr_assert_not_null(strstr(b, "largest live allocations:"), "%s", r.err);
    const char *summary = strstr(r.err, " of host memory), ");
    cr_assert_not_null(summary, "%s", r.err);
    cr_assert_lt(b, summary, "the breakdown comes at the failure, before the exit summary");
    /* quiet: nothing */
    const char *env2[] = {"VSP_FAKE_DEVICE_MEM=64M", "VRAMSPY_QUIET=1", NULL};
    th_run_traced(&r, argv, dir, "o2.trace", env2);
    cr_assert_null(strstr(r.err, "out of memory"));
}

/* Issue 23: on the GPU machine libvramspy-sym.so sat beside the shim and its dependency libdw.so.1
 * was missing; the warning said "not found beside the shim". It names the file, the loader's reason
 * (the missing library) and how to install it. */
Test(shim_runtime, symboliser_beside_the_shim_that_cannot_load_names_the_missing_library)
{
    char *dir = th_tmpdir(), out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/s.trace", dir);
#ifdef VSP_SAN_RUNTIME
    const char *preload = "LD_PRELOAD=" VSP_SAN_RUNTIME ":" VSP_BUILD_DIR "/tests/symbroken/libvramspy.so";
#else
    const char *preload = "LD_PRELOAD=" VSP_BUILD_DIR "/tests/symbroken/libvramspy.so";
#endif
    const char *argv[] = {VSP_PROGS "/prog_runtime", "frag", NULL};
    const char *env[] = {preload, out, "VSP_FAKE_DEVICE_MEM=64M", NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 0, 0), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "vramspy: out of memory: cudaMalloc of 6.0 MiB failed"), "%s", r.err);
    const char *w = strstr(r.err, "vramspy: libvramspy-sym.so (the in-process symboliser) is beside the shim (");
    cr_assert_not_null(w, "%s", r.err);
    cr_assert_not_null(strstr(w, "/tests/symbroken/libvramspy-sym.so) but could not be loaded: libvsp_gone.so.1: "),
                       "the loader's reason, naming the missing library: %s", r.err);
    cr_assert_not_null(strstr(w, "apt-get install libdw1 libelf1"), "%s", r.err);
    cr_assert_null(strstr(r.err, "not found beside the shim"), "%s", r.err);
    /* the breakdown still names the failing call from the dynamic symbol table */
    cr_assert_not_null(strstr(r.err, "vramspy: the failing call: "), "%s", r.err);
}

Test(shim_runtime, host_located_pool_through_the_runtime_is_host_memory)
{
    struct run_result plain;
    struct trace_summary s;
    run_traced("pools", NULL, &plain, &s);
    cr_assert_str_eq(plain.out, "hostpool 0\nfrompool 0\nsetcurrent 0\nasync 0\ndestroy 0\n");
    cr_assert_eq(s.by_memory[VSP_MEM_HOST_POOL], 2, "64 KiB from the pool, 16 KiB from it as the current pool");
    cr_assert_eq(s.by_api[VSP_API_cudaMallocFromPoolAsync], 1, "one event per allocation, under the runtime name");
    cr_assert_eq(s.by_api[VSP_API_cuMemAllocFromPoolAsync], 0);
    cr_assert_eq(s.live_count, 0);
}

Test(shim_runtime, a_valid_free_records_its_call_site_an_invalid_one_its_whole_stack)
{
    struct run_result plain;
    struct trace_summary s;
    run_traced("basic", NULL, &plain, &s);
    cr_assert_gt(s.frees_ok, 0);
    cr_assert_eq(s.ok_free_frames, 1, "a valid free walks no stack: one frame, the call site");
    cr_assert_gt(s.frees_failed, 0, "prog_runtime frees a bad pointer");
    cr_assert_gt(s.failed_free_frames, 1, "an invalid free gets its whole stack");
}

Test(shim_runtime, graph_memory_nodes_through_the_runtime_are_recorded_once)
{
    struct run_result plain;
    struct trace_summary s;
    run_traced("graph", NULL, &plain, &s);
    cr_assert_str_eq(plain.out, "graph 0\nallocnode 0\nfreenode 0\nallocnode 0\nthreshold 0\ntrim 0\ngraphdestroy 0\n");
    cr_assert_eq(s.by_api[VSP_API_cudaGraphAddMemAllocNode], 2, "under the runtime name");
    cr_assert_eq(s.by_api[VSP_API_cudaGraphAddMemFreeNode], 1);
    cr_assert_eq(s.by_api[VSP_API_cuGraphAddMemAllocNode], 0, "the driver call underneath is not recorded again");
    cr_assert_eq(s.live_device_bytes, 512 << 10, "the node never freed");
    cr_assert_gt(s.pool_records, 0, "the default pool, named by the program, is sampled at exit");
}

Test(shim_runtime, host_located_pool_through_the_runtime_is_refused_under_enforcement)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", "pools", NULL};
    const char *env[] = {"VRAMSPY_ENFORCE=vram-only", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env);
    cr_assert_str_eq(r.out, "hostpool 2\n", "refused with cudaErrorMemoryAllocation: %s", r.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.denied, 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMemPoolCreate], 1);
}

Test(shim_runtime, coverage_samples_account_for_the_device_memory)
{
    struct run_result plain;
    struct trace_summary s;
    run_traced("basic", NULL, &plain, &s);
    cr_assert_geq(s.usage_records, 2, "after the first call and at exit");
    cr_assert_eq(s.usage_source, VSP_USAGE_DEVICE, "no NVML here: device-wide");
    cr_assert_eq(s.first_usage.reason, VSP_USAGE_FIRST);
    cr_assert_eq(s.last_usage.reason, VSP_USAGE_EXIT);
    cr_assert_eq(s.max_untracked, 0, "every byte the device holds is traced (arena granularity aside): %llu",
                 (unsigned long long)s.max_untracked);
    cr_assert_gt(s.pool_records, 0, "the default pool was sampled (stream-ordered allocations were used)");
}

/* The real driver's cuMemGetInfo needs a current context: the exit handler runs on the main thread,
 * which never called CUDA here (prog_storm's workers did), so the shim asks the runtime instead,
 * which makes the context current (hooks_dl.c, the runtime noted by the hooks). Without that the
 * exit sample is lost (mutation-checked: a runtime_meminfo that answers NULL loses it). */
Test(shim_runtime, the_exit_sample_asks_the_runtime_where_the_driver_wants_a_context)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_storm", "2", "100", NULL};
    const char *env[] = {"VSP_FAKE_MEMINFO_NEEDS_CONTEXT=1", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.allocs_ok, 200);
    cr_assert_eq(s.first_usage.reason, VSP_USAGE_FIRST, "a worker's first call, with its context");
    cr_assert_eq(s.last_usage.reason, VSP_USAGE_EXIT, "the main thread's exit sample, through the runtime");
    cr_assert_eq(s.last_usage.source, VSP_USAGE_DEVICE);
    cr_assert_neq(s.last_usage.total_bytes, VSP_UNKNOWN_BYTES);
}

Test(shim_runtime, memory_taken_behind_the_hooks_shows_as_untracked)
{
    struct run_result plain;
    struct trace_summary s;
    const char *env[] = {"VSP_FAKE_HIDDEN_MEM=256M", NULL};
    run_traced("basic", env, &plain, &s);
    cr_assert_eq(s.max_untracked, 256ull << 20, "the 256 MiB the fake took behind the hooks: %llu",
                 (unsigned long long)s.max_untracked);
}

Test(shim_runtime, repeated_out_of_memory_failures_give_bounded_stderr)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", "oom200", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "o.trace", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    int lines = 0, headlines = 0;
    for (const char *p = r.err; (p = strchr(p, '\n')); p++)
        lines++;
    for (const char *p = r.err; (p = strstr(p, "vramspy: out of memory: ")); p++)
        headlines++;
    cr_assert_eq(headlines, 20, "3 breakdowns and 17 one-line reports: %s", r.err);
    cr_assert_lt(lines, 40, "200 failures, bounded output: %d lines", lines);
    cr_assert_not_null(strstr(r.err, "(failure 4; breakdowns are shown for the first 3)"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "further out-of-memory failures are not reported here"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "200 failed"), "the exit summary counts every failure: %s", r.err);
    /* nothing was live: no section without lines */
    cr_assert_null(strstr(r.err, "top call sites:"), "%s", r.err);
    cr_assert_null(strstr(r.err, "largest live allocations:"), "%s", r.err);
}

Test(shim_runtime, out_of_memory_breakdown_even_when_the_trace_cannot_be_written)
{
    const char *argv[] = {VSP_PROGS "/prog_runtime", "frag", NULL};
    const char *env[] = {"VRAMSPY_OUT=/nonexistent-dir/o.trace", "VSP_FAKE_DEVICE_MEM=64M", NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    cr_assert_eq(r.code, 0, "the program is unaffected: %s", r.err);
    cr_assert_not_null(strstr(r.err, "cannot create"), "%s", r.err);
    const char *b = strstr(r.err, "vramspy: out of memory: cudaMalloc of 6.0 MiB failed; device free 32.0 MiB of 64.0 MiB: "
                                  "looks like FRAGMENTATION");
    cr_assert_not_null(b, "the breakdown does not depend on the trace: %s", r.err);
    cr_assert_not_null(strstr(b, "live device memory: 32.0 MiB in 8 allocations"), "%s", r.err);
    cr_assert_not_null(strstr(b, "largest live allocations:\nvramspy:      4.0 MiB at 0x"), "%s", r.err);
}

/* Event times of a trace in file order, and its header's flags and start; the count. */
static size_t event_times(const char *path, uint64_t *t, size_t cap, uint32_t *flags, uint64_t *start)
{
    char err[600];
    struct vsp_reader *r = vsp_reader_open(path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    *flags = vsp_reader_header(r)->flags;
    *start = vsp_reader_header(r)->start_monotonic_ns;
    struct vsp_record rec;
    size_t n = 0;
    while (vsp_reader_next(r, &rec) > 0)
        if (rec.type == VSP_REC_EVENT && n < cap)
            t[n++] = ((const struct vsp_rec_event *)rec.payload)->time_ns;
    vsp_reader_close(r);
    return n;
}

/* VRAMSPY_CLOCK=coarse (issue 22): event times come from the kernel's tick, so events made in a
 * quick loop mostly share their time; never before the trace's start, never going backwards on the
 * thread; the header and the report say which clock it was. A bad value warns and keeps the
 * precise clock. */
Test(shim_runtime, clock_coarse_stamps_events_at_the_kernel_tick_and_the_report_says_so)
{
    char *dir = th_tmpdir(), path[4200], cmd[9000];
    const char *argv[] = {VSP_PROGS "/prog_storm", "1", "2000", NULL};
    static uint64_t t[8192];
    const char *modes[] = {"VRAMSPY_CLOCK=coarse", "VRAMSPY_CLOCK=precise", "VRAMSPY_CLOCK=rough"};
    for (int m = 0; m < 3; m++) {
        char name[32];
        snprintf(name, sizeof name, "c%d.trace", m);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        const char *env[] = {modes[m], NULL};
        struct run_result r;
        th_run_traced(&r, argv, dir, name, env);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cr_assert_eq(strstr(r.err, "VRAMSPY_CLOCK=rough") != NULL, m == 2, "%s", r.err);
        uint32_t flags;
        uint64_t start;
        size_t n = event_times(path, t, 8192, &flags, &start), same = 0;
        cr_assert_eq(n, 4000);
        cr_assert_eq((flags & VSP_FLAG_COARSE_CLOCK) != 0, m == 0);
        for (size_t i = 0; i < n; i++) {
            cr_assert_geq(t[i], start, "event %zu before the trace's start", i);
            if (i) {
                cr_assert_geq(t[i], t[i - 1], "one thread's times never go backwards");
                same += t[i] == t[i - 1];
            }
        }
        if (m == 0) /* 4,000 events take well under a second: a few hundred ticks at most */
            cr_assert_gt(same, n / 2, "%zu of %zu events share the time of the one before", same, n);
        snprintf(cmd, sizeof cmd, "'%s/vramspy-report' --format json '%s' | grep -q '\"clock\": \"%s\"'", VSP_BUILD_DIR,
                 path, m == 0 ? "coarse" : "precise");
        cr_assert_eq(system(cmd), 0, "the report's trace.clock");
        snprintf(cmd, sizeof cmd, "'%s/vramspy-report' --format svg '%s' | grep -q 'VRAMSPY_CLOCK=coarse'", VSP_BUILD_DIR,
                 path);
        cr_assert_eq(system(cmd) == 0, m == 0, "the timeline says its times are the kernel's tick");
    }
}
