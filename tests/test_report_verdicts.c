/* Tests of the verdicts a CI relies on (issue 11): --check-options validates every option without
 * reading a trace; lost events make findings uncertain (counted by --fail-on only with --strict);
 * crashes and allocation errors are findings; a running process's trace is in progress, not
 * leaking; double frees show both sites; the text report ends with a summary; module records of one
 * file are opened once; over-deep stacks are corrupt; sizes take decimals. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"

static json_t *finding(json_t *rep, const char *kind)
{
    return th_json_find(json_object_get(rep, "findings"), "kind", kind);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- --check-options ---- */

Test(report_verdicts, check_options_accepts_good_options_and_creates_nothing)
{
    char *dir = th_tmpdir(), args[4096], sup[256], kept[256];
    snprintf(sup, sizeof sup, "%s/sup.json", dir);
    th_write_file(sup, "[{\"kind\": \"leak\", \"function\": \"init_*\"}]");
    snprintf(kept, sizeof kept, "%s/kept.json", dir);
    th_write_file(kept, "keep me");
    struct run_result r;
    snprintf(args, sizeof args,
             "--check-options --format json --fail-on leak,crash,alloc-error,invalid_free --strict "
             "--signal 4242=11 --max-peak 1.5GiB --min-leak 0.5MiB --suppress '%s' -o '%s/new.json' "
             "--sysroot / --debug-dir '%s' --fallback-window 100",
             sup, dir, dir);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_str_eq(r.err, "");
    char p[300];
    snprintf(p, sizeof p, "%s/new.json", dir);
    cr_assert_neq(access(p, F_OK), 0, "--check-options created its output file");
    snprintf(args, sizeof args, "--check-options --format svg -o '%s' tests/data/leaks.trace", kept);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char buf[32] = "";
    FILE *f = fopen(kept, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "keep me", "--check-options truncated an existing output file");
}

Test(report_verdicts, check_options_rejects_each_bad_option_with_exit_2)
{
    char *dir = th_tmpdir(), badjson[256], goodjson[256];
    snprintf(badjson, sizeof badjson, "%s/bad.json", dir);
    th_write_file(badjson, "[{\"kind\": \"leak\",");
    snprintf(goodjson, sizeof goodjson, "%s/purposes.json", dir);
    th_write_file(goodjson, "{\"weights\": [\"load_*\"]}");
    char bad[16][512];
    int n = 0;
    snprintf(bad[n++], 512, "--format xml");
    snprintf(bad[n++], 512, "--fail-on leaks");
    snprintf(bad[n++], 512, "--min-leak 1XB");
    snprintf(bad[n++], 512, "--max-peak 1.5.5GiB");
    snprintf(bad[n++], 512, "--suppress /nonexistent/suppressions.json");
    snprintf(bad[n++], 512, "--suppress '%s'", badjson);
    snprintf(bad[n++], 512, "--purposes /nonexistent/purposes.json");
    snprintf(bad[n++], 512, "--format svg --purposes '%s'", goodjson);
    snprintf(bad[n++], 512, "-o /nonexistent/dir/report.json");
    snprintf(bad[n++], 512, "-o '%s'", dir); /* a directory */
    snprintf(bad[n++], 512, "--sysroot /nonexistent");
    snprintf(bad[n++], 512, "--debug-dir /nonexistent");
    snprintf(bad[n++], 512, "--weigh peak");
    snprintf(bad[n++], 512, "--signal 11");
    snprintf(bad[n++], 512, "--fallback-window soon");
    snprintf(bad[n++], 512, "--no-such-option");
    for (int i = 0; i < n; i++) {
        struct run_result r;
        char args[1024] = "--check-options ";
        cr_assert_lt(strlen(args) + strlen(bad[i]), sizeof args);
        strcat(args, bad[i]);
        th_report(&r, args);
        cr_assert_eq(r.code, 2, "'%s' was accepted: %s", bad[i], r.err);
        cr_assert_str_eq(r.out, "", "%s", bad[i]);
        cr_assert_geq(count_lines(r.err), 1, "'%s': no message", bad[i]);
        cr_assert_null(strstr(r.err, " -1"), "'%s': %s", bad[i], r.err);
        if (strncmp(bad[i], "--no-such", 9) != 0)
            cr_assert_eq(count_lines(r.err), 1, "'%s': not one line: %s", bad[i], r.err);
    }
}

Test(report_verdicts, missing_suppression_file_says_cannot_open_without_positions)
{
    struct run_result r;
    th_report(&r, "--suppress /nonexistent/s.json tests/data/leaks.trace");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "cannot open /nonexistent/s.json: No such file or directory"), "%s", r.err);
    cr_assert_null(strstr(r.err, "line -1"), "%s", r.err);
}

Test(report_verdicts, weigh_with_text_output_is_a_usage_error)
{
    struct run_result r;
    th_report(&r, "--weigh peak tests/data/leaks.trace");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "--weigh applies to --format folded"), "%s", r.err);
    cr_assert_str_eq(r.out, "");
    th_report(&r, "--format folded --weigh peak tests/data/leaks.trace");
    cr_assert_eq(r.code, 0, "%s", r.err);
}

Test(report_verdicts, nonexistent_sysroot_is_an_error)
{
    struct run_result r;
    th_report(&r, "--sysroot /nonexistent tests/data/leaks.trace");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "--sysroot /nonexistent: No such file or directory"), "%s", r.err);
}

Test(report_verdicts, sizes_accept_decimals)
{
    struct run_result r;
    /* leaks.trace peaks at 28 MiB; 0.025 GiB = 26843545.6 bytes */
    th_report(&r, "--format json --max-peak 0.025GiB --min-leak 0.5MiB tests/data/leaks.trace");
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out);
    json_t *peak = finding(j, "peak");
    cr_assert_not_null(peak);
    cr_assert_eq(json_integer_value(json_object_get(peak, "limit")), 26843546);
    json_decref(j);
    th_report(&r, "--format json --max-peak 1.5GiB tests/data/leaks.trace");
    cr_assert_eq(r.code, 0, "%s", r.err);
    j = th_json(r.out);
    cr_assert_null(finding(j, "peak"), "28 MiB is under 1.5 GiB");
    json_decref(j);
    /* 12 MiB of leaks from one stack stay, the 1 MiB pinned one goes under --min-leak 1.5MiB */
    th_report(&r, "--format json --min-leak 1.5MiB tests/data/leaks.trace");
    j = th_json(r.out);
    cr_assert_eq(json_integer_value(json_object_get(j, "suppressed")), 1, "%s", r.out);
    json_decref(j);
}

/* ---- lost events ---- */

Test(report_verdicts, drop_mode_storm_gives_uncertain_findings_and_fail_on_needs_strict)
{
    TH_SKIP_UNDER("tsan", "the storm is too slow under ThreadSanitizer");
    char *dir = th_tmpdir(), path[4096], args[4400];
    const char *env[] = {"VRAMSPY_ON_FULL=drop", "VRAMSPY_RING_SIZE=64K", "VRAMSPY_SUMMARY=0", NULL};
    /* Compact events keep up with a storm through 64 KiB: the loss is made certain by a file size
     * limit (512 KiB, bash's unit being 1 KiB), after which the ring fills and every event is
     * dropped and counted; each thread keeps 4 allocations live, so the cut always leaves
     * allocations whose frees were lost. */
    const char *argv[] = {"/bin/bash", "-c", "ulimit -f 512 && exec '" VSP_PROGS "/prog_storm' 8 20000 4", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "storm.%p.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, path);
    cr_assert_gt(s.dropped, 0, "the storm past the file size limit dropped nothing");
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out);
    json_t *w = json_object_get(j, "warnings");
    int warned = 0;
    for (size_t i = 0; i < json_array_size(w); i++)
        warned |= strstr(json_string_value(json_array_get(w, i)), "events lost") != NULL;
    cr_assert(warned, "no warning about the loss: %s", r.out);
    size_t i, uncertain = 0;
    json_t *f;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        int unc = json_is_true(json_object_get(f, "uncertain"));
        uncertain += unc;
        /* every pair was freed correctly: no invalid free is asserted as certain */
        cr_assert(strcmp(kind, "invalid_free") || unc, "a certain invalid_free in a lossy storm");
        cr_assert(strcmp(kind, "leak") || unc, "a certain leak in a lossy storm");
    }
    json_decref(j);
    cr_assert_gt(uncertain, 0, "a storm cut off mid-way leaves allocations without their frees: %s", r.out);
    snprintf(args, sizeof args, "--fail-on leak,invalid-free '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "uncertain findings failed the gate without --strict: %s", r.out);
    cr_assert_not_null(strstr(r.out, "(uncertain: "), "%s", r.out);
    snprintf(args, sizeof args, "--strict --fail-on leak,invalid-free '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 1, "--strict did not count uncertain findings");
}

/* ---- crash ---- */

Test(report_verdicts, sigsegv_after_an_allocation_gives_a_crash_finding)
{
    char *dir = th_tmpdir(), path[4096], args[4400];
    const char *env[] = {"VRAMSPY_SUMMARY=0", NULL};
    const char *argv[] = {VSP_PROGS "/prog_die", "segv", "3", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "die.trace", env);
    cr_assert(!r.exited && r.sig == SIGSEGV, "prog_die segv did not die of SIGSEGV");
    snprintf(path, sizeof path, "%s/die.trace", dir);
    snprintf(args, sizeof args, "--format json --fail-on crash --signal %d=11 '%s'", (int)r.pid, path);
    th_report(&r, args);
    cr_assert_eq(r.code, 1, "--fail-on crash: %s", r.err);
    json_t *j = th_json(r.out);
    json_t *c = finding(j, "crash");
    cr_assert_not_null(c, "%s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(c, "signal")), 11);
    cr_assert(json_is_false(json_object_get(json_object_get(j, "trace"), "in_progress")));
    json_decref(j);
    /* without --signal: the trace has no end and the process is gone */
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    j = th_json(r.out);
    c = finding(j, "crash");
    cr_assert_not_null(c, "%s", r.out);
    cr_assert(json_is_null(json_object_get(c, "signal")));
    json_decref(j);
    snprintf(args, sizeof args, "--signal 1=11 '%s'", path);
    th_report(&r, args);
    cr_assert_not_null(strstr(r.out, "CRASH"), "%s", r.out);
}

/* ---- allocation errors ---- */

Test(report_verdicts, allocations_failing_with_35_give_alloc_error)
{
    char *dir = th_tmpdir(), out[300], lib[300], link[330], path[4096], args[4400];
    /* the fake runtime without the fake driver: cudaErrorInsufficientDriver */
    snprintf(lib, sizeof lib, "%s/lib", dir);
    cr_assert_eq(mkdir(lib, 0755), 0);
    snprintf(link, sizeof link, "%s/libcudart.so.13", lib);
    cr_assert_eq(symlink(VSP_FAKES "/libcudart.so.13", link), 0);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/rt.trace", dir);
    char ldpath[400];
    snprintf(ldpath, sizeof ldpath, "LD_LIBRARY_PATH=%s", lib);
    const char *env[] = {out, ldpath, "VRAMSPY_SUMMARY=0", NULL};
    const char *argv[] = {VSP_PROGS "/prog_die", "exit", "3", NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 1, 1), 0);
    cr_assert_eq(r.code, 3, "cudaMalloc succeeded without a driver? %s", r.err);
    snprintf(path, sizeof path, "%s/rt.trace", dir);
    snprintf(args, sizeof args, "--format json --fail-on alloc-error '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 1, "%s", r.err);
    json_t *j = th_json(r.out);
    json_t *e = finding(j, "alloc_error");
    cr_assert_not_null(e, "%s", r.out);
    cr_assert_str_eq(json_string_value(json_object_get(e, "api")), "cudaMalloc");
    cr_assert_eq(json_integer_value(json_object_get(e, "result")), 35);
    cr_assert_str_eq(json_string_value(json_object_get(e, "result_name")), "cudaErrorInsufficientDriver");
    cr_assert_eq(json_integer_value(json_object_get(e, "count")), 1);
    cr_assert_gt(json_array_size(json_object_get(e, "stack")), 0);
    json_decref(j);
    snprintf(args, sizeof args, "'%s'", path);
    th_report(&r, args);
    cr_assert_not_null(strstr(r.out, "ALLOCATION ERROR cudaMalloc failed 1 time with 35 (cudaErrorInsufficientDriver)"),
                       "%s", r.out);
}

/* ---- a process that still runs ---- */

Test(report_verdicts, running_process_trace_is_in_progress_without_leaks)
{
    char *dir = th_tmpdir(), out[300], path[300], args[600];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/w.trace", dir);
    snprintf(path, sizeof path, "%s/w.trace", dir);
    const char *env[] = {out, "VRAMSPY_SUMMARY=0", NULL};
    const char *argv[] = {VSP_PROGS "/prog_die", "wait", "5", NULL};
    char buf[64];
    pid_t pid = th_start(argv[0], argv, env, buf, sizeof buf);
    struct run_result r;
    snprintf(args, sizeof args, "--format json --fail-on any '%s'", path);
    th_report(&r, args);
    int code = r.code;
    static char text[sizeof r.out];
    memcpy(text, r.out, sizeof text);
    th_report(&r, path);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(code, 0, "%s", text);
    json_t *j = th_json(text);
    cr_assert(json_is_true(json_object_get(json_object_get(j, "trace"), "in_progress")), "%s", text);
    cr_assert_null(finding(j, "leak"), "a running process's allocations are live, not leaked");
    cr_assert_null(finding(j, "crash"));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "totals"), "live_allocations")), 5);
    json_decref(j);
    cr_assert_not_null(strstr(r.out, "IN PROGRESS"), "%s", r.out);
    /* gone now: its trace has no end, so it crashed (killed), and what it held leaked */
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    j = th_json(r.out);
    cr_assert(json_is_false(json_object_get(json_object_get(j, "trace"), "in_progress")));
    cr_assert_not_null(finding(j, "crash"));
    cr_assert_not_null(finding(j, "leak"));
    json_decref(j);
}

/* ---- stacks ---- */

Test(report_verdicts, double_free_shows_the_allocation_and_first_free_sites)
{
    struct run_result r;
    th_report(&r, "--format json tests/data/invalid_free.trace");
    json_t *j = th_json(r.out);
    size_t i;
    json_t *f, *dbl = NULL;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "reason")), "double_free"))
            dbl = f;
    }
    cr_assert_not_null(dbl);
    json_t *as = json_array_get(json_object_get(dbl, "alloc_stack"), 0);
    json_t *fs = json_array_get(json_object_get(dbl, "first_free_stack"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(as, "address")), "0x4011d6");
    cr_assert_str_eq(json_string_value(json_object_get(fs, "address")), "0x401230");
    json_decref(j);
    th_report(&r, "tests/data/invalid_free.trace");
    cr_assert_not_null(strstr(r.out, "allocated at:"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "first freed at:"), "%s", r.out);
}

Test(report_verdicts, text_report_ends_with_a_summary_line)
{
    struct run_result r;
    th_report(&r, "--fail-on leak tests/data/leaks.trace");
    cr_assert_eq(r.code, 1);
    const char *last = r.out + strlen(r.out) - 1;
    while (last > r.out && last[-1] != '\n')
        last--;
    cr_assert_str_eq(last, "summary: 2 leak, 2 host_fallback; exit status 1 (--fail-on leak)\n", "%s", r.out);
    th_report(&r, "tests/data/child.trace");
    cr_assert_not_null(strstr(r.out, "summary: no findings; exit status 0 (no --fail-on)\n"), "%s", r.out);
}

Test(report_verdicts, libc_startup_frames_left_out_of_text_kept_in_json)
{
    char *dir = th_tmpdir(), path[300], args[600];
    snprintf(path, sizeof path, "%s/t.trace", dir);
    const char *env[] = {"VRAMSPY_SUMMARY=0", NULL};
    const char *argv[] = {VSP_PROGS "/prog_die", "exit", "1", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env);
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    if (!strstr(r.out, "\"__libc_start_main") && !strstr(r.out, "\"__libc_start_call_main"))
        cr_skip_test("libc's start-up frames are not symbolised on this machine");
    th_report(&r, path);
    cr_assert_not_null(strstr(r.out, "main (prog_die.c"), "%s", r.out);
    cr_assert_null(strstr(r.out, "__libc_start"), "%s", r.out);
    cr_assert_null(strstr(r.out, " _start"), "%s", r.out);
}

/* ---- synthetic traces: many module records, over-deep stacks ---- */

static struct ring_fixture fx;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
    cr_assert_eq(ring_fixture_put(&fx, type, a, alen, b, blen), 0);
}

static void synth_begin(void)
{
    cr_assert_eq(ring_fixture_open(&fx, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    static const char exe[] = "/opt/bin/plugin-host";
    struct vsp_rec_process p = {.pid = 1, .ppid = 0, .exe_len = sizeof exe};
    put(VSP_REC_PROCESS, &p, sizeof p, exe, sizeof exe);
}

static void synth_end(const char *path)
{
    struct vsp_rec_end e = {0};
    put(VSP_REC_END, &e, sizeof e, NULL, 0);
    cr_assert_eq(ring_fixture_keep(&fx, path, 1), 0);
}

Test(report_verdicts, thousand_module_records_of_one_library_open_it_once_in_bounded_memory)
{
    /* A real library with symbols, reloaded 1,000 times at new addresses: one leak per load. */
    const char *lib = VSP_PROGS "/libcounter.so";
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    Dl_info di;
    void *sym = dlsym(h, "cudaMalloc");
    cr_assert(sym && dladdr(sym, &di), "no cudaMalloc in %s", lib);
    uint64_t off = (uint64_t)(uintptr_t)sym - (uint64_t)(uintptr_t)di.dli_fbase;
    char *dir = th_tmpdir(), path[300];
    snprintf(path, sizeof path, "%s/reload.trace", dir);
    synth_begin();
    for (uint32_t i = 0; i < 1000; i++) {
        uint64_t base = 0x7f0000000000ull + (uint64_t)i * 0x100000ull;
        struct vsp_rec_module m = {.base = base, .start = base, .end = base + 0x10000,
                                   .path_len = (uint32_t)strlen(lib) + 1};
        put(VSP_REC_MODULE, &m, sizeof m, lib, strlen(lib) + 1);
        struct vsp_rec_stack s = {.id = i + 1, .nframes = 1};
        uint64_t frame = base + off + 8;
        put(VSP_REC_STACK, &s, sizeof s, &frame, sizeof frame);
        struct vsp_rec_event e = {.time_ns = 1000 + i, .ptr = 0x7f9000000000ull + i * 4096ull, .size = 4096,
                                  .stack_id = i + 1, .tid = 1, .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC,
                                  .memory = VSP_MEM_DEVICE, .seq = i};
        put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    }
    synth_end(path);
    dlclose(h);
    /* 40 descriptors: opening the library once per record would run out of them */
    char cmd[1200], jpath[300];
    snprintf(jpath, sizeof jpath, "%s/reload.json", dir);
    snprintf(cmd, sizeof cmd, "ulimit -n 40 && exec '%s' --format json -o '%s' '%s'", REPORT, jpath, path);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    cr_assert_lt(ru.ru_maxrss, 200 * 1024, "the report used %ld KiB", ru.ru_maxrss);
    json_error_t err;
    json_t *j = json_load_file(jpath, 0, &err);
    cr_assert_not_null(j, "%s: %s", jpath, err.text);
    cr_assert_eq(json_array_size(json_object_get(j, "findings")), 1000);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        json_t *fr = json_array_get(json_object_get(f, "stack"), 0);
        cr_assert_str_eq(json_string_value(json_object_get(fr, "function")), "cudaMalloc",
                         "finding %zu not symbolised", i);
    }
    cr_assert_eq(json_array_size(json_object_get(j, "warnings")), 0, "%s", json_string_value(json_array_get(json_object_get(j, "warnings"), 0)));
    json_decref(j);
}

Test(report_verdicts, stack_deeper_than_the_shim_writes_is_corrupt)
{
    char *dir = th_tmpdir(), path[300], args[400];
    snprintf(path, sizeof path, "%s/deep.trace", dir);
    synth_begin();
    uint64_t frames[300];
    for (int i = 0; i < 300; i++)
        frames[i] = 0x401000 + (uint64_t)i;
    struct vsp_rec_stack s = {.id = 1, .nframes = 300};
    put(VSP_REC_STACK, &s, sizeof s, frames, sizeof frames);
    synth_end(path);
    snprintf(args, sizeof args, "'%s'", path);
    struct run_result r;
    th_report(&r, args);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "a stack of 300 frames, deeper than the 256 the shim ever writes"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "offset"), "%s", r.err);
    cr_assert_str_eq(r.out, "");
}

/* Format 4 (issue 21): a stack holds up to 256 native and 256 Python frames; more Python frames
 * than that is as corrupt as more native ones. */
static void python_stack_trace(const char *path, unsigned native, unsigned python)
{
    synth_begin();
    static const char name[] = "step", file[] = "/srv/train.py";
    struct vsp_rec_pycode c = {.id = 5, .name_len = sizeof name, .file_len = sizeof file, .firstline = 30};
    char strings[sizeof name + sizeof file];
    memcpy(strings, name, sizeof name);
    memcpy(strings + sizeof name, file, sizeof file);
    put(VSP_REC_PYCODE, &c, sizeof c, strings, sizeof strings);
    uint64_t frames[512];
    for (unsigned i = 0; i < native; i++)
        frames[i] = 0x401000 + i;
    for (unsigned i = 0; i < python; i++) /* code 5, and code 6 that no PYCODE record names */
        frames[native + i] = VSP_PYFRAME(i ? 6 : 5, 40 + i, i + 1 == python);
    struct vsp_rec_stack s = {.id = 1, .nframes = native + python};
    put(VSP_REC_STACK, &s, sizeof s, frames, (native + python) * sizeof frames[0]);
    struct vsp_rec_event e = {.time_ns = 1000, .ptr = 0x7f9000000000ull, .size = 4096, .stack_id = 1, .tid = 1,
                              .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE, .seq = 0};
    put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    synth_end(path);
}

Test(report_verdicts, python_frames_up_to_the_depth_and_named_by_their_code)
{
    char *dir = th_tmpdir(), path[300], args[700];
    snprintf(path, sizeof path, "%s/py.trace", dir);
    python_stack_trace(path, 256, 256);
    char jpath[320];
    snprintf(jpath, sizeof jpath, "%s.json", path);
    snprintf(args, sizeof args, "--format json -o '%s' '%s'", jpath, path);
    struct run_result r;
    th_report(&r, args); /* into a file: 512 frames outgrow a run's capture */
    json_error_t err;
    json_t *j = json_load_file(jpath, 0, &err);
    cr_assert_not_null(j, "%s: %s", err.text, r.err);
    json_t *stack = json_object_get(th_json_find(json_object_get(j, "findings"), "kind", "leak"), "stack");
    cr_assert_eq(json_array_size(stack), 512, "the native frames, then the Python ones (no eval frame named)");
    json_t *py0 = json_array_get(stack, 256), *py1 = json_array_get(stack, 257);
    cr_assert(json_is_true(json_object_get(py0, "python")));
    cr_assert_str_eq(json_string_value(json_object_get(py0, "function")), "step");
    cr_assert_str_eq(json_string_value(json_object_get(py0, "file")), "train.py");
    cr_assert_str_eq(json_string_value(json_object_get(py0, "path")), "/srv/train.py");
    cr_assert_eq(json_integer_value(json_object_get(py0, "line")), 40);
    cr_assert_str_eq(json_string_value(json_object_get(py1, "function")), "<unknown Python code>");
    cr_assert_eq(json_integer_value(json_object_get(py1, "line")), 41);
    json_decref(j);
}

Test(report_verdicts, more_python_frames_than_the_shim_writes_is_corrupt)
{
    char *dir = th_tmpdir(), path[300], args[400];
    snprintf(path, sizeof path, "%s/pydeep.trace", dir);
    python_stack_trace(path, 3, 257);
    snprintf(args, sizeof args, "'%s'", path);
    struct run_result r;
    th_report(&r, args);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "a stack of 260 frames, deeper than"), "%s", r.err);
}

Test(report_verdicts, pycode_record_longer_than_itself_is_corrupt)
{
    char *dir = th_tmpdir(), path[300], args[400];
    snprintf(path, sizeof path, "%s/pycode.trace", dir);
    synth_begin();
    struct vsp_rec_pycode c = {.id = 1, .name_len = 100, .file_len = 100};
    put(VSP_REC_PYCODE, &c, sizeof c, "x\0y", 4);
    synth_end(path);
    snprintf(args, sizeof args, "'%s'", path);
    struct run_result r;
    th_report(&r, args);
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "record fields overrun the record"), "%s", r.err);
}

Test(report_verdicts, call_sites_sharing_their_innermost_frame_are_told_apart)
{
    char *dir = th_tmpdir(), path[300], args[400];
    snprintf(path, sizeof path, "%s/sites.trace", dir);
    synth_begin();
    static const char exe[] = "/opt/bin/plugin-host";
    struct vsp_rec_module m = {.base = 0x400000, .start = 0x400000, .end = 0x410000, .path_len = sizeof exe};
    put(VSP_REC_MODULE, &m, sizeof m, exe, sizeof exe);
    /* make_buffer (0x401100) called from two places (0x401200, 0x401300) of main (0x401400) */
    for (uint32_t i = 0; i < 2; i++) {
        struct vsp_rec_stack s = {.id = i + 1, .nframes = 3};
        uint64_t frames[3] = {0x401100, i ? 0x401300 : 0x401200, 0x401400};
        put(VSP_REC_STACK, &s, sizeof s, frames, sizeof frames);
        struct vsp_rec_event e = {.time_ns = 1000 + i, .ptr = 0x7f9000000000ull + i * 4096ull, .size = 4096,
                                  .stack_id = i + 1, .tid = 1, .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC,
                                  .memory = VSP_MEM_DEVICE, .seq = i};
        put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    }
    synth_end(path);
    snprintf(args, sizeof args, "'%s'", path);
    struct run_result r;
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "  at plugin-host+0x1100 <- plugin-host+0x1200\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "  at plugin-host+0x1100 <- plugin-host+0x1300\n"), "%s", r.out);
}

/* ---- issue 12: lifetimes and coverage ---- */

/* Run prog under the shim (traces in dir) and report the one trace as JSON. */
static json_t *run_and_report_json(const char *const *argv, const char *const *env_extra, const char *report_opts)
{
    char *dir = th_tmpdir();
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env_extra);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    char args[8400];
    snprintf(args, sizeof args, "--format json %s '%s/t.trace'", report_opts ? report_opts : "", dir);
    th_report(&r, args);
    cr_assert(r.exited && (r.code == 0 || r.code == 1), "%s", r.err);
    return th_json(r.out);
}

Test(report_vmm, physical_memory_lives_until_released_and_unmapped)
{
    const char *argv[] = {VSP_PROGS "/prog_driver", "vmm3", NULL};
    json_t *j = run_and_report_json(argv, NULL, NULL);
    json_t *to = json_object_get(j, "totals");
    cr_assert_eq(json_integer_value(json_object_get(to, "peak_bytes")), (1 + 3 * 2) << 20,
                 "three 2 MiB chunks mapped at once (released right after mapping) beside the 1 MiB");
    json_t *leak = NULL, *f;
    size_t i;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "kind")), "leak") &&
            !strcmp(json_string_value(json_object_get(f, "api")), "cuMemCreate"))
            leak = f;
    }
    cr_assert_not_null(leak, "a mapping never unmapped keeps its physical memory: a leak");
    cr_assert_eq(json_integer_value(json_object_get(leak, "bytes")), 2 << 20);
    json_decref(j);
}

static json_t *coverage_of(json_t *j)
{
    json_t *cv = json_object_get(j, "coverage");
    cr_assert_not_null(cv, "a coverage object");
    return cv;
}

static void coverage_case(int nvml, const char *hidden, uint64_t want_untracked, int want_finding)
{
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    char libpath[4200], hid[64];
    snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s:%s:%s/nvml", VSP_FAKES, VSP_PROGS, VSP_FAKES);
    snprintf(hid, sizeof hid, "VSP_FAKE_HIDDEN_MEM=%s", hidden ? hidden : "");
    const char *env[] = {nvml ? libpath : hid, nvml ? hid : NULL, NULL};
    json_t *j = run_and_report_json(argv, env, "--fail-on untracked");
    json_t *cv = coverage_of(j);
    cr_assert_str_eq(json_string_value(json_object_get(cv, "source")), nvml ? "nvml" : "device");
    cr_assert_eq(json_integer_value(json_object_get(cv, "untracked_bytes")), (json_int_t)want_untracked);
    cr_assert_eq(finding(j, "untracked") != NULL, want_finding);
    if (want_finding)
        cr_assert_eq(json_integer_value(json_object_get(finding(j, "untracked"), "bytes")), (json_int_t)want_untracked);
    json_decref(j);
}

Test(report_coverage, ordinary_run_is_fully_accounted_for_device_wide) { coverage_case(0, NULL, 0, 0); }
Test(report_coverage, ordinary_run_is_fully_accounted_for_through_nvml) { coverage_case(1, NULL, 0, 0); }
Test(report_coverage, memory_behind_the_hooks_is_untracked_device_wide) { coverage_case(0, "300M", 300ull << 20, 1); }
Test(report_coverage, memory_behind_the_hooks_is_untracked_through_nvml) { coverage_case(1, "300M", 300ull << 20, 1); }
Test(report_coverage, untracked_below_the_limit_is_no_finding) { coverage_case(0, "100M", 100ull << 20, 0); }

Test(report_coverage, text_report_says_how_much_it_accounts_for)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", NULL);
    char args[4400];
    snprintf(args, sizeof args, "'%s/t.trace'", dir);
    th_report(&r, args);
    cr_assert_not_null(strstr(r.out, "coverage: the trace accounts for 100% of this process's device memory"), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "(device-wide: "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "; other processes count too)"), "%s", r.out);
}

Test(report_pools, host_pool_allocations_are_host_fallback_and_pools_are_listed)
{
    const char *argv[] = {VSP_PROGS "/prog_runtime", "pools", NULL};
    json_t *j = run_and_report_json(argv, NULL, NULL);
    json_t *hf = finding(j, "host_fallback");
    cr_assert_not_null(hf, "allocations from a host-located pool are host memory");
    cr_assert_str_eq(json_string_value(json_object_get(hf, "memory")), "host_pool");
    json_decref(j);
}

Test(report_imports, imported_memory_is_never_a_leak)
{
    const char *argv[] = {VSP_PROGS "/prog_driver", "gpa", "extmem", NULL};
    json_t *j = run_and_report_json(argv, NULL, NULL);
    json_t *f;
    size_t i;
    json_array_foreach(json_object_get(j, "findings"), i, f)
        cr_assert_str_neq(json_string_value(json_object_get(f, "memory")) ? json_string_value(json_object_get(f, "memory")) : "",
                          "imported");
    json_decref(j);
}

/* ---- a failed chunk of a growing reservation (issue 23) ---- */

static json_t *chunk_run_of(const char *out)
{
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    cr_assert_not_null(j, "%s: %s", err.text, out);
    json_t *f = finding(j, "oom");
    cr_assert_not_null(f, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(f, "api")), "cuMemCreate");
    json_t *run = json_incref(json_object_get(f, "chunk_run"));
    cr_assert_not_null(run, "the failed cuMemCreate has no chunk_run: %s", out);
    json_decref(j);
    return run;
}

static long long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "%s is not an integer", k);
    return json_integer_value(v);
}

/* PyTorch's 400 GiB request with expandable segments failed at its 7,128th 20 MiB chunk and the
 * report said only "cuMemCreate of 20.0 MiB failed". With the fake driver: a reservation grown by
 * 2 MiB chunks (created and mapped) until cuMemCreate fails on a 64 MiB device, then every chunk
 * unmapped and released. */
Test(report_verdicts, failed_chunk_says_how_many_chunks_were_mapped_before_and_released_after_it)
{
    char *dir = th_tmpdir(), path[300], args[600];
    snprintf(path, sizeof path, "%s/grow.trace", dir);
    const char *env[] = {"VSP_FAKE_DEVICE_MEM=64M", "VRAMSPY_QUIET=1", NULL};
    const char *argv[] = {VSP_PROGS "/prog_driver", "vmmgrow", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "grow.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    /* 1 MiB of the 64 stays allocated by the program: 31 chunks fit */
    cr_assert_not_null(strstr(r.out, "grown 31 chunks, then create 2\nunmapped and released, 0 failed\n"), "%s", r.out);
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    json_t *run = chunk_run_of(r.out);
    cr_assert_eq(jint(run, "chunks"), 31);
    cr_assert_eq(jint(run, "bytes"), 31ll << 21);
    cr_assert_eq(jint(run, "chunk_bytes"), 2ll << 20);
    cr_assert_eq(jint(run, "mapped"), 31);
    cr_assert_eq(jint(run, "released_chunks"), 31);
    cr_assert_eq(jint(run, "released_bytes"), 31ll << 21);
    cr_assert(jint(run, "released_created_ns") > 0 && jint(run, "released_ns") > 0);
    json_decref(run);
    th_report(&r, path);
    const char *o = strstr(r.out, "OUT OF MEMORY cuMemCreate of 2.0 MiB failed 1 time");
    cr_assert_not_null(o, "%s", r.out);
    cr_assert_not_null(strstr(o, "\n    31 chunks of 2.0 MiB (62.0 MiB), created and mapped in the "), "%s", r.out);
    cr_assert_not_null(strstr(o, " s before this failure, were released within "), "%s", r.out);
    cr_assert_not_null(strstr(o, "one request of at least 64.0 MiB was being mapped chunk by chunk"), "%s", r.out);
    cr_assert_null(strstr(o, "since it last released one"), "all of the run was released: no second line\n%s", r.out);
}

/* The run is what the thread created since it last released physical memory; a failure that
 * nothing is released after says so. Synthetic: 3 chunks, one released, 2 more, a failure. */
Test(report_verdicts, chunk_run_starts_after_the_last_release_and_says_when_nothing_followed)
{
    char *dir = th_tmpdir(), path[300], args[600];
    snprintf(path, sizeof path, "%s/run.trace", dir);
    synth_begin();
    uint64_t t = 1000000;
    struct vsp_rec_event e = {.tid = 7, .api = VSP_API_cuMemCreate, .memory = VSP_MEM_PHYSICAL,
                              .free_bytes = UINT64_MAX, .total_bytes = UINT64_MAX, .size = 4u << 20};
    for (int i = 0; i < 6; i++) {
        e.time_ns = t += 1000;
        e.seq = (uint64_t)i;
        if (i == 3) { /* the first chunk released: the run starts again */
            e.api = VSP_API_cuMemRelease;
            e.op = VSP_OP_FREE;
            e.ptr = 0x1000;
        } else {
            e.api = VSP_API_cuMemCreate;
            e.op = VSP_OP_ALLOC;
            e.ptr = 0x1000 + (uint64_t)i * 0x1000;
            e.result = i == 5 ? 2 : 0; /* the last one fails with out-of-memory */
            if (i == 5) {
                e.ptr = 0;
                e.free_bytes = 1u << 20;
                e.total_bytes = 64u << 20;
            }
        }
        put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    }
    synth_end(path);
    struct run_result r;
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    json_t *run = chunk_run_of(r.out);
    cr_assert_eq(jint(run, "chunks"), 1, "chunk 4 only: chunks 1-3 came before the release\n%s", r.out);
    cr_assert_eq(jint(run, "released_chunks"), 0);
    json_decref(run);
    th_report(&r, path);
    cr_assert_not_null(strstr(r.out, "    before it, this thread had created 1 chunk of 4.0 MiB of physical memory "
                                     "(4.0 MiB, 0 cuMemMap calls) since it last released one; none released after it\n"),
                       "%s", r.out);
}
