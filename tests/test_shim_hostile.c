/* Integration tests of issue #20's shim-side defects: process shapes that a preload shim must not
 * change or misreport. A worker that sandboxes itself once CUDA is up (seccomp forbidding open),
 * a launcher that execs its worker, a watchdog that siglongjmps out of a blocked free, a free that
 * blocks while other threads make 1.2 million calls, and threads and coroutines with 16 KiB
 * stacks. Each runs with and without the shim where that makes sense (the plain run shows the
 * shape is real), then checks the trace and the report. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define MiB (1024ull * 1024ull)

/* ---- item 2: a seccomp sandbox installed after the first CUDA call ---- */

static void sandbox_case(const char *first_call)
{
    TH_SKIP_UNDER("asan", "the sanitizer runtime opens files of its own at exit");
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_sandbox", first_call, "100", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(plain.code, 0, "without the shim: %s", plain.err);
    cr_assert_str_eq(shim.out, "sandboxed 100 pairs, errors 0\n");
    cr_assert(shim.exited && shim.code == 0, "killed by signal %d under the shim: %s", shim.sig, shim.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert(s.complete, "the trace ends complete");
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 100);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 100);
    cr_assert_eq(s.live_count, 0);
}

Test(shim_hostile, sandbox_after_the_runtimes_first_call_runs_and_is_traced, .timeout = 60)
{
    sandbox_case("runtime");
}

Test(shim_hostile, sandbox_after_cuInit_runs_and_is_traced, .timeout = 60)
{
    sandbox_case("driver");
}

/* ---- item 5: exec after CUDA ---- */

Test(shim_hostile, exec_after_cuda_leaves_a_complete_trace_for_every_exec_function, .timeout = 120)
{
    static const char *const fns[] = {"execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve"};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        char *dir = th_tmpdir(), trace[4096], sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dir, fns[i]);
        cr_assert_eq(mkdir(sub, 0700), 0);
        /* /bin/echo prints its argument: the exec happened, in both runs */
        const char *argv[] = {VSP_PROGS "/prog_exec", fns[i], "/bin/echo", NULL};
        struct run_result plain, shim;
        th_run_pair(&plain, &shim, argv, sub, NULL);
        cr_assert_str_eq(plain.out, "exec-target\n", "%s without the shim: %s", fns[i], plain.err);
        struct trace_summary s;
        th_one_trace(sub, &s, NULL, trace);
        cr_assert(s.complete && s.has_end, "%s: the launcher's trace is finalised before the exec", fns[i]);
        cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 2, "%s", fns[i]);
        char args[4300];
        snprintf(args, sizeof args, "--fail-on any '%s'", trace);
        struct run_result r;
        th_report(&r, args);
        cr_assert_eq(r.code, 0, "%s: --fail-on any passes: %s%s", fns[i], r.out, r.err);
        cr_assert_null(strstr(r.out, "CRASH"), "%s: no crash finding: %s", fns[i], r.out);
    }
}

Test(shim_hostile, failed_exec_keeps_the_trace_going_and_complete, .timeout = 60)
{
    static const char *const fns[] = {"execv", "execlp", "fexecve"};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        char *dir = th_tmpdir(), trace[4096], sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dir, fns[i]);
        cr_assert_eq(mkdir(sub, 0700), 0);
        const char *argv[] = {VSP_PROGS "/prog_exec", fns[i], "/nonexistent/prog", NULL};
        struct run_result plain, shim;
        th_run_pair(&plain, &shim, argv, sub, NULL);
        cr_assert_str_eq(plain.out, "exec failed: No such file or directory\n", "%s: %s", fns[i], plain.err);
        struct trace_summary s;
        th_one_trace(sub, &s, NULL, trace);
        cr_assert(s.complete, "%s: finalised again at exit", fns[i]);
        cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 5, "%s: the calls after the failed exec are traced", fns[i]);
        cr_assert_eq(s.by_api[VSP_API_cudaFree], 5, "%s", fns[i]);
        cr_assert_eq(s.end.allocations, 5, "%s: the last END record counts everything", fns[i]);
        char args[4300];
        snprintf(args, sizeof args, "--fail-on any '%s'", trace);
        struct run_result r;
        th_report(&r, args);
        cr_assert_eq(r.code, 0, "%s: %s%s", fns[i], r.out, r.err);
    }
}

/* ---- item 7: a jump out of a blocked free ---- */

Test(shim_hostile, siglongjmp_out_of_a_blocked_free_loses_only_that_call_and_says_so, .timeout = 120)
{
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {VSP_PROGS "/prog_longjmp", "3146240", "10", NULL};
    const char *env[] = {"VSP_FAKE_BLOCK_FREE_SIZE=3146240", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_str_eq(plain.out, "jumped 1 pairs 10 errors 0\n", "%s", plain.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert(s.complete);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 11, "the blocked allocation and the 10 after the jump");
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 10, "every free after the jump");
    cr_assert(s.has_end);
    cr_assert_eq(s.end.abandoned, 1, "one hook left by the jump");
    json_t *j = th_report_json(trace);
    json_t *w = json_object_get(j, "warnings");
    int warned = 0;
    for (size_t i = 0; i < json_array_size(w); i++)
        warned |= strstr(json_string_value(json_array_get(w, i)), "left by a jump") != NULL;
    cr_assert(warned, "the report says a call was lost to the jump");
    json_decref(j);
}

/* ---- item 6: a free in flight while 1.2 million other calls are made ---- */

Test(shim_hostile, free_blocked_under_1_2_million_calls_is_ordered_before_the_reuse, .timeout = 240)
{
    const uint64_t size = 3 * MiB + 512;
    char *dir = th_tmpdir(), trace[4096];
    /* B's 600,000 pairs: 1.2 million events while A's free is in flight, more than a reorder
     * window of 1,048,576 would wait; B's reuse of A's address sits in the trace before A's free */
    const char *argv[] = {VSP_PROGS "/prog_blockfree", "3146240", "600000", NULL};
    const char *env[] = {"VSP_FAKE_BLOCK_FREE_SIZE=3146240", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_str_eq(plain.out, "a_malloc 0 a_free 0 b_errors 0 last 0\n", "%s", plain.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert(s.complete);
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.events, 1200003);
    cr_assert_eq(s.frees_ok, 600001);
    cr_assert_eq(s.live_count, 1, "in event order A's free comes before B's reuse: one allocation live");
    cr_assert_eq(s.live_bytes, size);
    json_t *j = th_report_json(trace);
    cr_assert_eq(th_findings_of(j, "invalid_free", NULL, NULL), 0, "no invalid or double free");
    int64_t count, bytes;
    th_findings_of(j, "leak", &count, &bytes);
    cr_assert_eq(count, 1, "exactly one leak: B's last allocation");
    cr_assert_eq(bytes, (int64_t)size);
    json_decref(j);
}

/* ---- item 1: small stacks ---- */

static void small_stack_case(const char *shape)
{
    TH_SKIP_UNDER("asan", "the sanitizer's own frames do not fit 16 KiB stacks");
    TH_SKIP_UNDER("tsan", "the sanitizer's own frames do not fit 16 KiB stacks");
    char *dir = th_tmpdir(), want[64];
    const char *argv[] = {VSP_PROGS "/prog_stack", shape, "16", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    snprintf(want, sizeof want, "%s ok\n", shape);
    cr_assert_str_eq(plain.out, want, "without the shim: %s", plain.err);
    cr_assert(shim.exited && shim.code == 0, "%s: killed by signal %d under the shim", shape, shim.sig);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert(s.complete);
    cr_assert_eq(s.allocs_ok, 50, "%s: every call traced", shape);
    cr_assert_eq(s.frees_ok, 50, "%s", shape);
}

Test(shim_hostile, thread_with_a_16_KiB_stack_runs_under_the_shim, .timeout = 60)
{
    small_stack_case("thread");
}

Test(shim_hostile, coroutine_with_a_16_KiB_stack_runs_under_the_shim, .timeout = 60)
{
    small_stack_case("coroutine");
}

static size_t stack_used(struct run_result *r)
{
    size_t used = 0;
    cr_assert_eq(sscanf(r->out, "used %zu", &used), 1, "%s%s", r->out, r->err);
    return used;
}

Test(shim_hostile, a_hook_adds_at_most_2_KiB_of_stack, .timeout = 60)
{
    TH_SKIP_UNDER("asan", "the sanitizer's frames are part of what is measured");
    TH_SKIP_UNDER("tsan", "the sanitizer's frames are part of what is measured");
    /* the process's first CUDA call (the trace created), new stacks, a full walk (invalid free),
     * an out-of-memory breakdown, purpose rules (the symboliser), 256 frames, debug warnings */
    char *dir = th_tmpdir(), purposes[4200], out[4200];
    snprintf(purposes, sizeof purposes, "VRAMSPY_PURPOSES=%s/tools/demo_purposes.json", VSP_SOURCE_DIR);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_stack", "measure", NULL};
    const char *env[] = {out, purposes, "VRAMSPY_DEPTH=256", "VRAMSPY_DEBUG=1", NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
    size_t base = stack_used(&plain), with = stack_used(&shim);
    cr_assert_gt(base, 1024, "the measurement sees the program's own calls (%zu bytes)", base);
    cr_assert_leq(with, base + 2048, "the shim adds %zu bytes to the %zu the calls use alone", with - base, base);
}

/* ---- item 20: a short trace's disk use ---- */

Test(shim_hostile, a_two_event_trace_gives_its_ring_back_to_the_disk, .timeout = 60)
{
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {VSP_PROGS "/prog_sandbox", "runtime", "1", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert(s.complete);
    cr_assert_eq(s.events, 2);
    struct stat st;
    cr_assert_eq(stat(trace, &st), 0);
    cr_assert_geq((uint64_t)st.st_size, 4 * MiB, "the file keeps its layout (header, ring, log)");
    cr_assert_lt((uint64_t)st.st_blocks * 512, 256u << 10, "on disk: %llu bytes of the 4 MiB ring",
                 (unsigned long long)st.st_blocks * 512);
}

/* ---- a fork while another thread holds the loader's lock (dl_iterate_phdr) ---- */

/* glibc (2.36) does not take the loader's lock around fork; the shim's first call in a child
 * walks the module list (dl_iterate_phdr), so a child forked while another thread was inside it
 * deadlocked under the shim, every time (20 of 20), and never without it. The shim's
 * dl_iterate_phdr wrapper puts every call in its fork bracket: fork waits for it. */
Test(shim_hostile, children_forked_while_a_thread_iterates_the_loaders_list_do_not_hang, .timeout = 240)
{
    TH_SKIP_UNDER("tsan", "the sanitizer builds leave dl_iterate_phdr unbracketed (hooks_dl.c)");
    TH_SKIP_UNDER("asan", "the sanitizer builds leave dl_iterate_phdr unbracketed (hooks_dl.c)");
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_fork_loader", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_str_eq(plain.out, "children 20 hung 0\n", "without the shim: %s", plain.err);
    cr_assert(shim.exited && shim.code == 0, "killed by signal %d under the shim: %s", shim.sig, shim.err);
    cr_assert_str_eq(shim.out, "children 20 hung 0\n", "%s", shim.err);
    char paths[32][4096];
    cr_assert_eq(th_list_traces(dir, paths, 32), 21, "the parent's trace and one per child");
}
