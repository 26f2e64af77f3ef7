/* Integration tests of the shim's promises about the process around it: nothing lost under a
 * storm of threads, however the process ends (exit, _exit, abort, a crash, SIGKILL), across fork,
 * from a library constructor before main; bad configuration degrades to one warning; trace files
 * are never overwritten nor followed through symlinks; nothing on stdout; no file for a process
 * that never touches CUDA. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* prog_storm THREADS PAIRS under the shim with env (may be NULL): exits 0, its trace reads. */
static void storm(const char *threads, const char *pairs, const char *const *env, struct trace_summary *s)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/storm.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_storm", threads, pairs, NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "storm.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    th_summarize(path, s, NULL);
    cr_assert(s->ok, "%s", s->error);
}

Test(shim_lifecycle, storm_of_8_threads_records_every_call_exactly, .timeout = 240)
{
    struct trace_summary s;
    storm("8", "20000", NULL, &s);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 160000);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 160000);
    cr_assert_eq(s.allocs_ok, 160000);
    cr_assert_eq(s.frees_ok, 160000);
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.torn, 0);
    cr_assert_eq(s.live_count, 0, "every free matched its allocation in trace order");
    cr_assert_eq(s.stack_refs_missing, 0);
    cr_assert(s.complete);
}

/* The same with the double's per-thread block cache (VSP_FAKE_THREAD_CACHE=1, make bench's
 * `cached` path): the threads' pairs never meet in the double's lock, so the shim's hooks run on
 * both cores at once, and each thread gets its own blocks back at once after their frees. */
Test(shim_lifecycle, storm_of_4_threads_through_a_lock_free_double_records_every_call, .timeout = 240)
{
    const char *env[] = {"VSP_FAKE_THREAD_CACHE=1", NULL};
    struct trace_summary s;
    storm("4", "20000", env, &s);
    cr_assert_eq(s.allocs_ok, 80000 + 2, "the pairs and main's check of the cache");
    cr_assert_eq(s.frees_ok, 80000 + 2);
    cr_assert_eq(s.frees_failed, 1, "the check's second free of its block (the double's answer, passed on)");
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.live_count, 0, "every free matched its allocation in trace order");
    cr_assert(s.complete);
}

static void die_case(const char *how, int want_sig, int want_complete)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/die.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_die", how, "500", NULL};
    const char *env[] = {"VRAMSPY_RING_SIZE=64K", NULL}; /* small ring: part log, part ring */
    struct run_result r;
    th_run_traced(&r, argv, dir, "die.trace", env);
    if (want_sig)
        cr_assert_eq(r.sig, want_sig, "expected signal %d, got exit %d sig %d", want_sig, r.code, r.sig);
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.allocs_ok, 500, "%s: every call that returned is in the trace", how);
    cr_assert_eq(s.complete, want_complete, "%s: complete", how);
}

Test(shim_lifecycle, nothing_lost_on_exit) { die_case("exit", 0, 1); }
/* _exit runs no destructors; the shim's _exit finalises the trace first, so it is complete and
 * no crash is reported for a process that exited normally */
Test(shim_lifecycle, nothing_lost_on__exit_and_the_trace_is_complete) { die_case("_exit", 0, 1); }
/* A process that never used CUDA: the shim's _exit ends it with exit_group itself when libc
 * follows it in the loader's list (no lookup of the next _exit at every exit, issue 22), keeping
 * the status; with another interposer preloaded after it, or a needed library of the program
 * that interposes _exit (a sanitizer runtime does), that one's _exit still runs. */
Test(shim_lifecycle, _exit_without_cuda_keeps_the_status_and_a_later_interposer_still_runs)
{
    const char *argv[] = {VSP_PROGS "/prog_die", "_exit", "0", "7", NULL};
    struct run_result alone, both;
    cr_assert_eq(th_run(&alone, argv, NULL, 1, 0), 0);
    cr_assert_eq(alone.code, 7, "exit %d sig %d: %s", alone.code, alone.sig, alone.err);
    const char *env[] = {TH_PRELOAD_ENV " " VSP_PROGS "/libexit_spy.so", NULL};
    cr_assert_eq(th_run(&both, argv, env, 0, 0), 0);
    cr_assert_eq(both.code, 7, "exit %d sig %d: %s", both.code, both.sig, both.err);
    cr_assert(strstr(both.err, "spy _exit 7") != NULL, "the second interposer ran: [%s]", both.err);
    const char *needed_argv[] = {VSP_PROGS "/prog_exit_needed", "9", NULL};
    struct run_result needed;
    cr_assert_eq(th_run(&needed, needed_argv, NULL, 1, 0), 0);
    cr_assert_eq(needed.code, 9, "exit %d sig %d: %s", needed.code, needed.sig, needed.err);
    cr_assert(strstr(needed.err, "spy _exit 9") != NULL, "the needed library's _exit ran: [%s]", needed.err);
}
Test(shim_lifecycle, nothing_lost_on_abort) { die_case("abort", SIGABRT, 0); }
Test(shim_lifecycle, nothing_lost_on_crash) { die_case("segv", SIGSEGV, 0); }
Test(shim_lifecycle, nothing_lost_on_sigkill) { die_case("kill", SIGKILL, 0); }

Test(shim_lifecycle, nothing_lost_on_sigkill_from_outside)
{
    char *dir = th_tmpdir(), out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/k.trace", dir);
    snprintf(path, sizeof path, "%s/k.trace", dir);
    const char *env[] = {out, NULL};
    const char *argv[] = {"prog_die", "wait", "300", NULL};
    char buf[64];
    pid_t pid = th_start(VSP_PROGS "/prog_die", argv, env, buf, sizeof buf);
    cr_assert_not_null(strstr(buf, "ready 300"));
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.allocs_ok, 300);
    cr_assert_eq(s.complete, 0);
}

Test(shim_lifecycle, forked_child_writes_its_own_trace)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_fork", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "f.%p.trace", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "child 0"));
    uint64_t probes[] = {1000, 2000, 3000, 0};
    struct trace_summary ps, cs, *parent = &ps, *child = &cs;
    th_fork_traces(dir, (uint32_t)r.pid, probes, parent, child);
    cr_assert_eq(parent->count_size[0], 3);
    cr_assert_eq(parent->count_size[1], 0, "the child's allocations are not in the parent's trace");
    cr_assert_eq(parent->count_size[2], 2);
    cr_assert_eq(child->count_size[0], 0, "the parent's allocations are not in the child's trace");
    cr_assert_eq(child->count_size[1], 5);
    cr_assert_eq(child->by_api[VSP_API_cudaMalloc], 5, "the parent's other thread does not exist in the child");
    cr_assert(parent->complete);
}

Test(shim_lifecycle, allocation_in_library_constructor_before_main)
{
    TH_SKIP_UNDER("asan", "instrumented shim code cannot run in another library's constructor before the "
                          "preloaded sanitizer runtime's own constructor has set it up");
    TH_SKIP_UNDER("tsan", "instrumented shim code cannot run in another library's constructor before the "
                          "preloaded sanitizer runtime's own constructor has set it up");
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/c.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_ctor", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "c.trace", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 1);
    cr_assert_eq(s.live_bytes, 4096);
}

Test(shim_lifecycle, unwritable_out_warns_once_and_program_runs_untraced)
{
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VRAMSPY_OUT=/nonexistent-dir/x.trace", NULL};
    struct run_result plain, r;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, plain.out);
    const char *w = strstr(r.err, "cannot create trace file");
    cr_assert_not_null(w, "%s", r.err);
    cr_assert_null(strstr(w + 1, "cannot create trace file"), "warned once: %s", r.err);
}

Test(shim_lifecycle, garbage_depth_warns_and_uses_default)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/g.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VRAMSPY_DEPTH=banana", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "g.trace", env);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.err, "VRAMSPY_DEPTH=banana"), "%s", r.err);
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok);
    cr_assert_gt(s.events, 0);
}

Test(shim_lifecycle, depth_limits_frames)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/d.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VRAMSPY_DEPTH=2", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "d.trace", env);
    struct trace_summary s;
    th_summarize(path, &s, NULL);
    cr_assert(s.ok);
    cr_assert_eq(s.max_frames, 2);
}

Test(shim_lifecycle, existing_file_and_symlink_are_never_written)
{
    char *dir = th_tmpdir(), path[4200], target[4200];
    snprintf(path, sizeof path, "%s/x.trace", dir);
    snprintf(target, sizeof target, "%s/victim", dir);
    FILE *f = fopen(target, "w");
    fputs("precious", f);
    fclose(f);
    cr_assert_eq(symlink(target, path), 0);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "x.trace", NULL);
    cr_assert_eq(r.code, 0);
    char buf[64] = {0};
    f = fopen(target, "r");
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "precious");
    char alt[4300];
    snprintf(alt, sizeof alt, "%s.1", path);
    struct trace_summary s;
    th_summarize(alt, &s, NULL);
    cr_assert(s.ok, "the trace went to a new name: %s", s.error);
}

Test(shim_lifecycle, out_naming_a_directory_puts_the_default_name_inside_it)
{
    char *dir = th_tmpdir(), sub[4200], out[4300];
    const char *forms[] = {"%s/in", "%s/in/"}; /* an existing directory, with and without the '/' */
    snprintf(sub, sizeof sub, "%s/in", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        char given[4250];
        snprintf(given, sizeof given, forms[i], dir);
        snprintf(out, sizeof out, "VRAMSPY_OUT=%s", given);
        const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
        const char *env[] = {out, NULL};
        struct run_result r;
        cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
        cr_assert_eq(r.code, 0);
        char path[4400];
        snprintf(path, sizeof path, "%s/vramspy.prog_runtime.%d.trace", sub, (int)r.pid);
        struct trace_summary s;
        th_summarize(path, &s, NULL);
        cr_assert(s.ok, "%s: the trace is %s: %s", given, path, s.error);
        snprintf(path, sizeof path, "%s/in.1", dir);
        struct stat sb;
        cr_assert_neq(stat(path, &sb), 0, "%s: no file beside the directory", given);
    }
}

Test(shim_lifecycle, quiet_silences_summary_and_stdout_is_never_touched)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VRAMSPY_QUIET=1", NULL};
    struct run_result plain, r;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    th_run_traced(&r, argv, dir, "q.trace", env);
    cr_assert_str_eq(r.out, plain.out);
    cr_assert_str_eq(r.err, plain.err, "quiet: nothing on stderr either");
}

Test(shim_lifecycle, process_without_cuda_leaves_no_trace)
{
    char *dir = th_tmpdir();
    const char *argv[] = {"/bin/sh", "-c", "true", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "n.%p.trace", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "");
    char paths[4][4096];
    cr_assert_eq(th_list_traces(dir, paths, 4), 0);
}

Test(shim_lifecycle, exec_gets_its_own_trace)
{
    char *dir = th_tmpdir(), cmd[4200];
    snprintf(cmd, sizeof cmd, "%s/prog_die exit 3 && exec %s/prog_die exit 4", VSP_PROGS, VSP_PROGS);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "%e.%p.trace", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char paths[4][4096];
    cr_assert_eq(th_list_traces(dir, paths, 4), 2);
}

Test(shim_lifecycle, metrics_file_is_written_while_the_program_runs)
{
    char *dir = th_tmpdir(), out[4200], metrics[4200], mpath[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/m.trace", dir);
    snprintf(metrics, sizeof metrics, "VRAMSPY_METRICS=%s/vram.%%e.prom", dir);
    snprintf(mpath, sizeof mpath, "%s/vram.prog_die.prom", dir);
    const char *env[] = {out, metrics, "VRAMSPY_METRICS_INTERVAL=50", NULL};
    const char *argv[] = {"prog_die", "wait", "10", NULL};
    char buf[64];
    pid_t pid = th_start(VSP_PROGS "/prog_die", argv, env, buf, sizeof buf);
    /* the program is blocked in pause(): only the metrics thread can write the file now */
    unlink(mpath);
    char text[16384] = {0};
    for (int i = 0; i < 100 && !text[0]; i++) {
        usleep(20000);
        FILE *f = fopen(mpath, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = 0;
            fclose(f);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char want[256];
    snprintf(want, sizeof want, "vramspy_live_bytes{pid=\"%d\",executable=\"prog_die\",memory=\"device\"} 40960\n", (int)pid);
    cr_assert_not_null(strstr(text, want), "%s", text);
    cr_assert_not_null(strstr(text, "# TYPE vramspy_allocations_total counter\n"));
    cr_assert_not_null(strstr(text, "api=\"cudaMalloc\"} 10\n"), "%s", text);
    cr_assert_not_null(strstr(text, "vramspy_failed_allocations_total{"), "%s", text);
    cr_assert_not_null(strstr(text, "vramspy_host_fallback_total{"), "%s", text);
    cr_assert_not_null(strstr(text, "vramspy_peak_bytes{"), "%s", text);
}

Test(shim_lifecycle, metrics_path_is_fixed_at_start_and_final_values_written_at_exit)
{
    char *dir = th_tmpdir(), a[4200], b[4200], mfile[4300], text[16384] = {0};
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    cr_assert_eq(mkdir(a, 0700), 0);
    cr_assert_eq(mkdir(b, 0700), 0);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "chdir", a, b, NULL};
    const char *env[] = {"VRAMSPY_METRICS=rel.%p.prom", "VRAMSPY_METRICS_INTERVAL=3600000", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "m.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    snprintf(mfile, sizeof mfile, "ls '%s' | grep -c '^rel\\.[0-9]*\\.prom$' | grep -qx 1", a);
    cr_assert_eq(system(mfile), 0, "the file is where the relative path pointed at the first CUDA call");
    snprintf(mfile, sizeof mfile, "ls -A '%s' | grep -q .", b);
    cr_assert_neq(system(mfile), 0, "nothing follows the program's chdir");
    snprintf(mfile, sizeof mfile, "cat '%s'/rel.*.prom", a);
    FILE *f = popen(mfile, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    pclose(f);
    cr_assert_not_null(strstr(text, "executable=\"prog_runtime\",memory=\"device\"} 3145728\n"),
                       "the exit-time write has the final values (the interval never elapsed): %s", text);
    cr_assert_not_null(strstr(text, "api=\"cudaMalloc\"} 2\n"), "%s", text);
}

Test(shim_lifecycle, unwritable_metrics_path_warns_once_and_changes_nothing)
{
    char *dir = th_tmpdir(), out[4300];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/u.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {out, "VRAMSPY_METRICS=/nonexistent-dir/x.prom", NULL};
    struct run_result plain, r;
    th_run_both(&plain, &r, argv, env, 0);
    const char *w = strstr(r.err, "VRAMSPY_METRICS: cannot write /nonexistent-dir/x.prom: No such file or directory");
    cr_assert_not_null(w, "%s", r.err);
    cr_assert_null(strstr(w + 1, "VRAMSPY_METRICS: cannot write"), "once: %s", r.err);
}
