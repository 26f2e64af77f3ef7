/* Tests of `vramspy run` (exit statuses, stdout untouched, children, signals passed on) and of the
 * report's other outputs: folded stacks, Perfetto JSON, SVG (well-formed XML), JUnit, suppressions,
 * budgets, --output. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define VRAMSPY VSP_BUILD_DIR "/vramspy"

/* vramspy run without --out makes its trace directory under $TMPDIR: the commands run with
 * TMPDIR set to a directory of this test process, removed when it exits. */
static char sh_tmp[64];

static void sh_tmp_remove(void)
{
    char cmd[128];
    if (sh_tmp[0] && !getenv("VSP_KEEP_TEST_DIRS")) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", sh_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", sh_tmp);
    }
}

static void sh(struct run_result *r, const char *fmt, const char *arg)
{
    TH_SKIP_UNDER("tsan", "the front-end's shell pipelines cannot start with the ThreadSanitizer runtime "
                          "preloaded; they run in the plain, ASan and UBSan builds");
    if (!sh_tmp[0]) {
        snprintf(sh_tmp, sizeof sh_tmp, "/tmp/vsp-sh-XXXXXX");
        cr_assert_not_null(mkdtemp(sh_tmp));
        atexit(sh_tmp_remove);
    }
    char cmd[17000];
    char inner[16384];
    snprintf(inner, sizeof inner, fmt, arg ? arg : "");
    snprintf(cmd, sizeof cmd, "cd '%s' && export TMPDIR='%s' && %s", VSP_SOURCE_DIR, sh_tmp, inner);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 0), 0);
}

Test(vramspy_run, exit_status_is_the_programs_own)
{
    struct run_result r;
    sh(&r, VRAMSPY " run -- /bin/sh -c 'exit 7'", NULL);
    cr_assert_eq(r.code, 7);
    cr_assert_not_null(strstr(r.err, "nothing was traced"), "%s", r.err);
    sh(&r, "ls -d \"$TMPDIR\"/vramspy-run.* 2>/dev/null | wc -l", NULL);
    cr_assert_eq(atoi(r.out), 0, "an empty trace directory of its own making is removed: %s", r.out);
    sh(&r, VRAMSPY " run -- " VSP_PROGS "/prog_die abort 3", NULL);
    cr_assert_eq(r.code, 128 + SIGABRT, "killed by a signal: 128+N, as a shell says");
    cr_assert_not_null(strstr(r.err, "INCOMPLETE"), "the report of the dead program's trace follows: %s", r.err);
    sh(&r, VRAMSPY " run --fail-on oom -- " VSP_PROGS "/prog_runtime basic", NULL);
    cr_assert_eq(r.code, 0, "no oom in basic: the program's 0");
}

Test(vramspy_run, fail_on_gives_error_exitcode)
{
    struct run_result r;
    sh(&r, VRAMSPY " run --fail-on leak -- " VSP_PROGS "/prog_runtime basic", NULL);
    cr_assert_eq(r.code, 1);
    sh(&r, VRAMSPY " run --fail-on leak,host-fallback --error-exitcode 42 -- " VSP_PROGS "/prog_runtime basic", NULL);
    cr_assert_eq(r.code, 42);
    sh(&r, VRAMSPY " run --error-exitcode x -- true", NULL);
    cr_assert_eq(r.code, 2);
    sh(&r, VRAMSPY " run", NULL);
    cr_assert_eq(r.code, 2);
    sh(&r, VRAMSPY " bogus", NULL);
    cr_assert_eq(r.code, 2);
    sh(&r, VRAMSPY " --version", NULL);
    cr_assert_eq(r.code, 0);
    sh(&r, VRAMSPY " run --help", NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "--error-exitcode"));
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

Test(vramspy_run, mistyped_report_option_does_not_start_the_program)
{
    char *dir = th_tmpdir(), marker[4200], cmd[16384];
    snprintf(marker, sizeof marker, "%s/marker", dir);
    const char *bad[] = {"--fail-on leaks", "--format xml", "--min-leak 1XB", "--suppress %s/missing.json",
                         "-o %s/no/such/dir/out.xml", "--fail-on leak,leaks", "--max-peak lots", "--fial-on leak"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char opt[4400];
        snprintf(opt, sizeof opt, bad[i], dir);
        snprintf(cmd, sizeof cmd, VRAMSPY " run --out '%s/traces' %s -- /bin/sh -c 'touch %s'", dir, opt, marker);
        struct run_result r;
        sh(&r, "%s", cmd);
        cr_assert_eq(r.code, 2, "%s: a usage error: %s", opt, r.err);
        cr_assert(!exists(marker), "%s: the program was not started", opt);
        cr_assert_not_null(strstr(r.err, "/bin/sh was not started"), "%s: names the program after --: %s", opt, r.err);
        cr_assert_not_null(strstr(r.err, "vramspy-report: "), "%s: the report says what is wrong: %s", opt, r.err);
    }
    /* the same command with good options starts it: the marker shows a started program */
    snprintf(cmd, sizeof cmd, VRAMSPY " run --out '%s/traces' --fail-on leak --strict --format json -- /bin/sh -c 'touch %s'",
             dir, marker);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(exists(marker));
}

Test(vramspy_run, report_failing_after_the_run_is_never_a_success)
{
    /* The program spoils its own trace (as a full disk or a stray writer would): the report
     * cannot read it, so the run has no verdict. */
    char *dir = th_tmpdir(), cmd[16384];
    const char *cases[][2] = {{"", "2"}, {"--fail-on leak --error-exitcode 3", "3"}, {"--fail-on leak --error-exitcode 0", "2"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(cmd, sizeof cmd,
                 VRAMSPY " run --out '%s/t%zu' %s -- /bin/sh -c '" VSP_PROGS "/prog_runtime basic > /dev/null; "
                         "for f in %s/t%zu/vramspy.*.trace; do echo garbage > \"$f\"; done'",
                 dir, i, cases[i][0], dir, i);
        struct run_result r;
        sh(&r, "%s", cmd);
        cr_assert_eq(r.code, atoi(cases[i][1]), "[%s] %s", cases[i][0], r.err);
        cr_assert_not_null(strstr(r.err, "not a vramspy trace"), "the reason: %s", r.err);
        cr_assert_not_null(strstr(r.err, "the report failed"), "%s", r.err);
    }
}

Test(vramspy_run, death_by_signal_is_passed_to_the_report_as_a_crash)
{
    struct run_result r;
    sh(&r, VRAMSPY " run --fail-on crash --error-exitcode 5 -- " VSP_PROGS "/prog_die segv 3", NULL);
    cr_assert_eq(r.code, 5, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "CRASH"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "signal 11"), "the signal vramspy run saw: %s", r.err);
}

Test(vramspy_run, stdout_is_the_programs_and_report_goes_to_stderr)
{
    struct run_result plain, r;
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    sh(&r, VRAMSPY " run -- " VSP_PROGS "/prog_runtime basic", NULL);
    cr_assert_str_eq(r.out, plain.out);
    cr_assert_not_null(strstr(r.err, "LEAK"), "%s", r.err);
    cr_assert_null(strstr(r.err, "vramspy: trace:"), "the shim's own summary is left out under run");
}

Test(vramspy_run, children_traces_are_reported_and_out_dir_kept)
{
    char *dir = th_tmpdir();
    struct run_result r;
    sh(&r, VRAMSPY " run --out %s -- " VSP_PROGS "/prog_fork", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "2 traces in"), "%s", r.err);
    char paths[4][4096];
    cr_assert_eq(th_list_traces(dir, paths, 4), 2);
}

Test(vramspy_run, termination_signal_is_passed_on_and_reported)
{
    TH_SKIP_UNDER("tsan", "see sh()");
    char *dir = th_tmpdir(), logp[4200];
    snprintf(logp, sizeof logp, "%s/err.log", dir);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        FILE *e = fopen(logp, "w");
        dup2(fileno(e), 2);
        setenv("LD_LIBRARY_PATH", VSP_FAKES, 1);
#ifdef VSP_SAN_RUNTIME
        setenv("LD_PRELOAD", VSP_SAN_RUNTIME, 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#endif
        execl(VRAMSPY, "vramspy", "run", "--out", dir, "--", VSP_PROGS "/prog_die", "wait", "10", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[64] = {0};
    cr_assert_gt(read(pipefd[0], buf, sizeof buf - 1), 0);
    cr_assert_not_null(strstr(buf, "ready 10"));
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st), "vramspy outlives the signal to report");
    cr_assert_eq(WEXITSTATUS(st), 128 + SIGTERM);
    char log[8192] = {0};
    FILE *f = fopen(logp, "r");
    size_t n = fread(log, 1, sizeof log - 1, f);
    fclose(f);
    log[n] = 0;
    cr_assert_not_null(strstr(log, "LEAK 40.0 KiB in 10 device allocations"), "%s", log);
}

static int well_formed_xml(const char *path)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' '%s'", path);
    return system(cmd) == 0;
}

Test(report_formats, folded_perfetto_svg_junit)
{
    char *dir = th_tmpdir(), out[4200], path[4200], file[4300];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/p.trace", dir);
    snprintf(path, sizeof path, "%s/p.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "frag", NULL};
    const char *env[] = {out, "VSP_FAKE_DEVICE_MEM=64M", NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    const char *basic[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    char out2[4200], path2[4200];
    snprintf(out2, sizeof out2, "VRAMSPY_OUT=%s/b.trace", dir);
    snprintf(path2, sizeof path2, "%s/b.trace", dir);
    const char *env2[] = {out2, NULL};
    cr_assert_eq(th_run(&r, basic, env2, 1, 0), 0);

    sh(&r, VSP_BUILD_DIR "/vramspy-report --format folded '%s'", path2);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, ";main;basic;cudaMalloc 1048576\n"), "%s", r.out);
    sh(&r, VSP_BUILD_DIR "/vramspy-report --format folded --weigh allocated '%s'", path2);
    cr_assert_not_null(strstr(r.out, ";basic;cudaMalloc 5242880\n"), "%s", r.out);
    sh(&r, VSP_BUILD_DIR "/vramspy-report --format folded --weigh peak '%s'", path2);
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, ";basic;cudaMalloc 3145728\n"), "%s", r.out);

    sh(&r, VSP_BUILD_DIR "/vramspy-report --format perfetto '%s'", path);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "perfetto output is JSON: %s", je.text);
    json_t *evs = json_object_get(j, "traceEvents");
    size_t i, counters = 0, oom = 0, fallback = 0;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        const char *name = json_string_value(json_object_get(e, "name"));
        counters += ph && !strcmp(ph, "C");
        oom += ph && !strcmp(ph, "i") && !strcmp(name, "fragmentation");
        fallback += ph && !strcmp(ph, "i") && !strcmp(name, "host fallback");
    }
    cr_assert_gt(counters, 5);
    cr_assert_eq(oom, 1);
    cr_assert_eq(fallback, 1);
    json_decref(j);

    snprintf(file, sizeof file, "%s/t.svg", dir);
    char args[16384];
    snprintf(args, sizeof args, VSP_BUILD_DIR "/vramspy-report --format svg -o '%s' '%s' '%s'", file, path, path2);
    sh(&r, "%s", args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(well_formed_xml(file), "the SVG is well-formed XML");

    snprintf(file, sizeof file, "%s/t.xml", dir);
    snprintf(args, sizeof args, VSP_BUILD_DIR "/vramspy-report --format junit --fail-on leak,oom -o '%s' '%s'", file, path2);
    sh(&r, "%s", args);
    cr_assert_eq(r.code, 1);
    cr_assert(well_formed_xml(file));
    FILE *f = fopen(file, "r");
    char xml[65536];
    size_t n = fread(xml, 1, sizeof xml - 1, f);
    xml[n] = 0;
    fclose(f);
    cr_assert_not_null(strstr(xml, "name=\"leak\">"), "%s", xml);
    cr_assert_not_null(strstr(xml, "<failure type=\"leak\""), "%s", xml);
    cr_assert_not_null(strstr(xml, "at basic (prog_runtime.c:"), "%s", xml);
    cr_assert_not_null(strstr(xml, "name=\"oom\"/>"), "a passing check is an empty testcase: %s", xml);
}

Test(report_formats, suppressions_drop_and_count)
{
    char *dir = th_tmpdir(), rules[4200], args[9000];
    snprintf(rules, sizeof rules, "%s/s.json", dir);
    FILE *f = fopen(rules, "w");
    fputs("[{\"kind\": \"leak\", \"module\": \"worker-orcd\"}, {\"kind\": \"host_fallback\", \"function\": \"nomatch*\"}]", f);
    fclose(f);
    struct run_result r;
    snprintf(args, sizeof args, VSP_BUILD_DIR "/vramspy-report --format json --fail-on leak --suppress '%s' "
             "tests/data/leaks.trace", rules);
    sh(&r, "%s", args);
    cr_assert_eq(r.code, 0, "the leaks are suppressed: %s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "suppressed")), 2);
    cr_assert_eq(json_array_size(json_object_get(j, "findings")), 2, "the host fallbacks remain");
    json_decref(j);
    f = fopen(rules, "w");
    fputs("[{\"kind\": \"leaks\"}]", f);
    fclose(f);
    snprintf(args, sizeof args, VSP_BUILD_DIR "/vramspy-report --suppress '%s' tests/data/leaks.trace", rules);
    sh(&r, "%s", args);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "unknown kind"), "%s", r.err);
    sh(&r, VSP_BUILD_DIR "/vramspy-report --suppress /nonexistent.json tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 2);
}

Test(report_formats, budgets_peak_and_min_leak)
{
    struct run_result r;
    sh(&r, VSP_BUILD_DIR "/vramspy-report --format json --max-peak 16MiB --fail-on peak tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 1);
    json_t *j = json_loads(r.out, 0, NULL);
    json_t *fs = json_object_get(j, "findings");
    json_t *peak = json_array_get(fs, json_array_size(fs) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(peak, "kind")), "peak");
    cr_assert_eq(json_integer_value(json_object_get(peak, "peak_bytes")), 28 * 1024 * 1024);
    cr_assert_eq(json_integer_value(json_object_get(peak, "limit")), 16 * 1024 * 1024);
    cr_assert_gt(json_array_size(json_object_get(peak, "stack")), 0);
    json_decref(j);
    sh(&r, VSP_BUILD_DIR "/vramspy-report --max-peak 1GiB --fail-on peak tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 0);
    sh(&r, VSP_BUILD_DIR "/vramspy-report --format json --min-leak 5MB tests/data/leaks.trace", NULL);
    j = json_loads(r.out, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "suppressed")), 1, "the 1 MiB pinned leak is under 5 MB");
    json_decref(j);
    sh(&r, VSP_BUILD_DIR "/vramspy-report --max-peak lots tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 2);
    sh(&r, VRAMSPY " report --fail-on leak tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 1, "vramspy report is the analyzer");
}

#include <fcntl.h>
#include <poll.h>
#include <pty.h>

/* Read from a pty master until `needle` shows up after `from` (or the time runs out). */
static int pty_wait(int fd, char *buf, size_t cap, size_t *len, const char *needle, size_t from, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0) {
            ssize_t n = read(fd, buf + *len, cap - 1 - *len);
            if (n > 0) {
                *len += (size_t)n;
                buf[*len] = 0;
            }
        }
        if (strstr(buf + from, needle))
            return 1;
    }
    return 0;
}

Test(vramspy_top, live_view_of_a_growing_trace_through_a_pty_quits_on_q, .timeout = 60)
{
    TH_SKIP_UNDER("tsan", "see sh()");
    char *dir = th_tmpdir(), out[4200], path[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/g.trace", dir);
    snprintf(path, sizeof path, "%s/g.trace", dir);
    const char *env[] = {out, "VRAMSPY_RING_SIZE=64K", NULL};
    const char *argv[] = {"prog_die", "drip", "5", NULL};
    char rb[64];
    pid_t writer = th_start(VSP_PROGS "/prog_die", argv, env, rb, sizeof rb);

    int master;
    pid_t top = forkpty(&master, NULL, NULL, NULL);
    if (top == 0) {
#ifdef VSP_SAN_RUNTIME
        setenv("LD_PRELOAD", VSP_SAN_RUNTIME, 1);
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#endif
        execl(VSP_BUILD_DIR "/vramspy", "vramspy", "top", path, (char *)NULL);
        _exit(127);
    }
    static char screen[1 << 20];
    size_t len = 0;
    cr_assert(pty_wait(master, screen, sizeof screen, &len, "top live call sites:", 0, 10000), "%s", screen);
    cr_assert_not_null(strstr(screen, "\033[2J"), "redraws the screen");
    cr_assert_not_null(strstr(screen, "trace: live"), "%s", screen);
    /* the trace grows: a later frame shows more allocations than the first */
    char *a1 = strstr(screen, "allocations ");
    unsigned long first = a1 ? strtoul(a1 + 12, NULL, 10) : 0;
    size_t mark = len;
    cr_assert(pty_wait(master, screen, sizeof screen, &len, "top live call sites:", mark, 10000));
    cr_assert(pty_wait(master, screen, sizeof screen, &len, "top live call sites:", len, 10000));
    char *last = NULL;
    for (char *p = strstr(screen + mark, "allocations "); p; p = strstr(p + 1, "allocations "))
        last = p;
    cr_assert_not_null(last);
    cr_assert_gt(strtoul(last + 12, NULL, 10), first, "the view follows the growing trace");
    cr_assert_eq(write(master, "q", 1), 1);
    int st = -1;
    for (int i = 0; i < 100 && waitpid(top, &st, WNOHANG) == 0; i++)
        usleep(20000);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "q quits cleanly");
    kill(writer, SIGKILL);
    waitpid(writer, NULL, 0);
    close(master);
}

Test(vramspy_top, once_prints_one_frame_and_missing_trace_is_an_error)
{
    struct run_result r;
    sh(&r, VRAMSPY " top --once tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "12.0 MiB"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "device"));
    sh(&r, VRAMSPY " top --once tests/data/none.trace", NULL);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "none.trace"));
}

Test(vramspy_top, without_a_terminal_frames_follow_each_other_and_an_empty_trace_is_waited_for)
{
    char *dir = th_tmpdir(), cmd[4400];
    snprintf(cmd, sizeof cmd, ": > '%s/starting.trace'; timeout --preserve-status -s INT 2.5 " VRAMSPY " top '%s/starting.trace' < /dev/null",
             dir, dir);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_not_null(strstr(r.out, "waiting for the trace to start"), "a file the program has just created: %s",
                       r.out);
    cr_assert_null(strstr(r.out, "\033["), "no terminal escapes into a pipe: %s", r.out);
    cr_assert_eq(r.code, 0, "Ctrl-C (SIGINT) quits cleanly: %s", r.err);
    snprintf(cmd, sizeof cmd, "timeout -s INT 4 " VRAMSPY " top tests/data/leaks.trace < /dev/null");
    sh(&r, "%s", cmd);
    cr_assert_not_null(strstr(r.out, "12.0 MiB"), "%s", r.out);
    cr_assert_null(strstr(r.out, "\033["), "%s", r.out);
}

/* Start prog_die drip (one 4 KiB allocation every 50 ms after `first`) under the shim, writing
 * `path`; returns its pid once it has said "ready". */
static pid_t start_dripper(const char *path, int first)
{
    char out[4200], n[16], rb[64];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s", path);
    snprintf(n, sizeof n, "%d", first);
    const char *env[] = {out, NULL};
    const char *argv[] = {"prog_die", "drip", n, NULL};
    return th_start(VSP_PROGS "/prog_die", argv, env, rb, sizeof rb);
}

Test(vramspy_top, dead_process_is_noticed_and_top_exits, .timeout = 60)
{
    TH_SKIP_UNDER("tsan", "see sh()");
    char *dir = th_tmpdir(), path[4200], cmd[16384];
    snprintf(path, sizeof path, "%s/d.trace", dir);
    pid_t w = start_dripper(path, 5);
    usleep(200000);
    kill(w, SIGKILL);
    usleep(100000); /* not reaped yet: a zombie, which still has a /proc entry, is dead all the same */
    snprintf(cmd, sizeof cmd, "timeout 20 " VRAMSPY " top '%s' < /dev/null", path);
    struct run_result r;
    sh(&r, "%s", cmd);
    waitpid(w, NULL, 0);
    cr_assert_eq(r.code, 0, "top exits by itself after the last frame (124: it kept redrawing): %s", r.err);
    cr_assert_null(strstr(r.out, "trace: live"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "is gone without finishing its trace"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "this was its last frame"), "%s", r.out);
    /* the same without the zombie, once it has been reaped */
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "is gone without finishing its trace"), "%s", r.out);
    /* a process that exited and finalised its trace */
    char out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/f.trace", dir);
    snprintf(path, sizeof path, "%s/f.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {out, NULL};
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    snprintf(cmd, sizeof cmd, "timeout 20 " VRAMSPY " top '%s' < /dev/null", path);
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "trace: finished (process "), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "this was its last frame"), "%s", r.out);
}

/* The rate on the first frame (and on --once, which has only one). */
static double frame_rate(const char *out)
{
    const char *p = strstr(out, "allocations ");
    cr_assert_not_null(p, "%s", out);
    p = strchr(p, '(');
    cr_assert_not_null(p, "%s", out);
    return strtod(p + 1, NULL);
}

Test(vramspy_top, first_frame_rate_comes_from_the_trace_times, .timeout = 60)
{
    TH_SKIP_UNDER("tsan", "see sh()");
    char *dir = th_tmpdir(), path[4200], cmd[16384];
    snprintf(path, sizeof path, "%s/r.trace", dir);
    pid_t w = start_dripper(path, 1);
    usleep(1500000); /* about 30 allocations, one every 50 ms */
    snprintf(cmd, sizeof cmd, VRAMSPY " top --once '%s'", path);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "trace: live"), "%s", r.out);
    double live = frame_rate(r.out);
    cr_assert(live > 5.0 && live < 100.0, "about 20/s from the first frame: %s", r.out);
    kill(w, SIGKILL);
    waitpid(w, NULL, 0);
    /* dead: the rate over the trace's own last seconds, not 0 */
    sh(&r, "%s", cmd);
    double dead = frame_rate(r.out);
    cr_assert(dead > 5.0 && dead < 100.0, "%s", r.out);
}

/* ---- the CI gate and the log (issue 20: items 12, 13 and 20) ---- */

Test(vramspy_gate, fail_on_plan_or_peak_without_its_option_is_a_usage_error)
{
    char *dir = th_tmpdir(), cmd[9000];
    const char *cases[] = {"--fail-on plan", "--fail-on peak", "--fail-on leak,plan", "--fail-on peak --plan x"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(cmd, sizeof cmd, VRAMSPY " run --out '%s/t' %s -- /bin/sh -c 'touch %s/marker'", dir, cases[i], dir);
        struct run_result r;
        sh(&r, "%s", cmd);
        cr_assert_eq(r.code, 2, "%s: a gate that cannot close is a usage error: %s", cases[i], r.err);
        cr_assert_not_null(strstr(r.err, "was not started"), "%s", r.err);
        snprintf(cmd, sizeof cmd, "%s/marker", dir);
        cr_assert(!exists(cmd), "%s: the program was not started", cases[i]);
    }
    struct run_result r;
    sh(&r, VRAMSPY " report --fail-on peak tests/data/leaks.trace", NULL);
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "--fail-on peak needs --max-peak"), "%s", r.err);
    sh(&r, VRAMSPY " report --fail-on any tests/data/leaks.trace > /dev/null", NULL);
    cr_assert_eq(r.code, 1, "'any' needs neither: %s", r.err);
    sh(&r, VRAMSPY " report --fail-on peak --max-peak 1GiB tests/data/leaks.trace > /dev/null", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
}

Test(vramspy_gate, a_percent_sign_in_out_or_tmpdir_keeps_the_trace_and_the_verdict)
{
    char *dir = th_tmpdir(), cmd[9000];
    snprintf(cmd, sizeof cmd, VRAMSPY " run --out '%s/a%%pb%%%%' --fail-on leak -- " VSP_PROGS "/prog_die exit 3", dir);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 1, "the leak fails the run: %s", r.err);
    char sub[4300], paths[4][4096];
    snprintf(sub, sizeof sub, "%s/a%%pb%%%%", dir);
    cr_assert_eq(th_list_traces(sub, paths, 4), 1, "the trace is where it was asked to be: %s", r.err);
    snprintf(cmd, sizeof cmd, "mkdir '%s/t%%e' && TMPDIR='%s/t%%e' " VRAMSPY " run --fail-on leak -- " VSP_PROGS
             "/prog_die exit 3", dir, dir);
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "1 trace in "), "%s", r.err);
}

Test(vramspy_gate, a_preloaded_sanitizer_does_not_judge_the_front_end)
{
    TH_SKIP_UNDER("asan", "a front end built with AddressSanitizer (make SANITIZER=address) keeps its own leak "
                          "checks by design; the plain build runs this");
    struct run_result r;
    sh(&r, "cc -print-file-name=libasan.so", NULL);
    char asan[4096];
    snprintf(asan, sizeof asan, "%.4000s", r.out);
    asan[strcspn(asan, "\n")] = 0;
    if (asan[0] != '/' || !exists(asan))
        cr_skip_test("no libasan.so to preload (%s)", asan);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "LD_PRELOAD='%s' ASAN_OPTIONS=detect_leaks=1 " VRAMSPY " run -- " VSP_PROGS
             "/prog_die exit 3", asan);
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "the program exited 0, and so does the run: %s", r.err);
    cr_assert_null(strstr(r.err, "LeakSanitizer"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "LEAK"), "the run was traced and reported: %s", r.err);
}

Test(vramspy_gate, vramspy_options_after_the_program_name_are_warned_about)
{
    struct run_result r;
    sh(&r, VRAMSPY " run " VSP_PROGS "/prog_die exit 3 --fail-on leak", NULL);
    cr_assert_eq(r.code, 0, "the option is the program's: %s", r.err);
    cr_assert_not_null(strstr(r.err, "warning: '--fail-on' comes after the program's name"), "%s", r.err);
    sh(&r, VRAMSPY " run --fail-on leak " VSP_PROGS "/prog_die exit 3", NULL);
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_null(strstr(r.err, "warning: '"), "%s", r.err);
}

Test(vramspy_run, the_summary_line_says_what_vramspy_run_returns)
{
    struct run_result r;
    sh(&r, VRAMSPY " run -- /bin/sh -c '" VSP_PROGS "/prog_die exit 3; exit 5'", NULL);
    cr_assert_eq(r.code, 5, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "; exit status 5 (the program's own; no --fail-on)"), "%s", r.err);
    sh(&r, VRAMSPY " run -- " VSP_PROGS "/prog_die segv 3", NULL);
    cr_assert_eq(r.code, 139, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "; exit status 139 (the program's own; no --fail-on)"), "%s", r.err);
    sh(&r, VRAMSPY " run --fail-on oom -- " VSP_PROGS "/prog_die segv 3", NULL);
    cr_assert_eq(r.code, 139, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "; exit status 139 (the program's own; --fail-on oom)"), "%s", r.err);
    sh(&r, VRAMSPY " run --fail-on crash --error-exitcode 9 -- " VSP_PROGS "/prog_die segv 3", NULL);
    cr_assert_eq(r.code, 9, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "; exit status 9 (--fail-on crash)"), "%s", r.err);
}

Test(vramspy_run, a_program_that_cannot_be_started_is_said_so_with_126_or_127)
{
    char *dir = th_tmpdir(), cmd[9000];
    struct run_result r;
    sh(&r, VRAMSPY " run -- ./does-not-exist", NULL);
    cr_assert_eq(r.code, 127, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "./does-not-exist could not be started: No such file or directory"), "%s", r.err);
    cr_assert_null(strstr(r.err, "made no CUDA allocation call"), "%s", r.err);
    snprintf(cmd, sizeof cmd, "touch '%s/notexec' && chmod 644 '%s/notexec' && " VRAMSPY " run -- '%s/notexec'", dir,
             dir, dir);
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 126, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "could not be started: Permission denied"), "%s", r.err);
}

Test(vramspy_run, out_with_its_value_forgotten_is_a_usage_error)
{
    char *dir = th_tmpdir(), cmd[9000];
    snprintf(cmd, sizeof cmd, "cd '%s' && " VRAMSPY " run --out -- /bin/true", dir);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "--out needs a value (got '--')"), "%s", r.err);
    snprintf(cmd, sizeof cmd, "%s/--", dir);
    cr_assert(!exists(cmd), "no directory named --");
}

Test(vramspy_run, a_picture_or_junit_without_o_goes_to_a_file_and_the_log_says_why_it_failed)
{
    char *dir = th_tmpdir(), cmd[9000];
    snprintf(cmd, sizeof cmd, VRAMSPY " run --out '%s/t' --format svg -- " VSP_PROGS "/prog_die exit 3", dir);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_null(strstr(r.err, "<svg"), "no picture in the log: %s", r.err);
    cr_assert_not_null(strstr(r.err, "the svg report is in "), "%s", r.err);
    snprintf(cmd, sizeof cmd, "%s/t/vramspy-report.svg", dir);
    cr_assert(exists(cmd));
    snprintf(cmd, sizeof cmd, VRAMSPY " run --out '%s/u' --format junit -o '%s/j.xml' --fail-on leak,crash -- "
             VSP_PROGS "/prog_die segv 3", dir, dir);
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "--fail-on leak: 1 leak finding\n"), "one line per failing kind: %s", r.err);
    cr_assert_not_null(strstr(r.err, "--fail-on crash: 1 crash finding\n"), "%s", r.err);
}

Test(vramspy_run, out_of_memory_lines_do_not_point_at_a_summary_that_is_off)
{
    struct run_result r;
    sh(&r, VRAMSPY " run -- " VSP_PROGS "/prog_runtime oom200 > /dev/null", NULL);
    cr_assert_null(strstr(r.err, "the exit summary counts them"), "vramspy run turns the summary off: %s", r.err);
    cr_assert_not_null(strstr(r.err, "further out-of-memory failures are not reported here; the trace records"),
                       "%s", r.err);
    cr_assert_not_null(strstr(r.err, "failed 200 times"), "the report counts them: %s", r.err);
}

Test(vramspy_run, a_pipe_or_fifo_as_plan_is_refused_before_the_start)
{
    char *dir = th_tmpdir(), cmd[9000];
    snprintf(cmd, sizeof cmd, "mkfifo '%s/plan' && " VRAMSPY " run --plan '%s/plan' -- /bin/sh -c 'touch %s/marker'", dir,
             dir, dir);
    struct run_result r;
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "is not a regular file"), "%s", r.err);
    snprintf(cmd, sizeof cmd, "%s/marker", dir);
    cr_assert(!exists(cmd));
}

/* make bench (issue 20): a tracked file is rewritten only when asked */
Test(make_bench, writes_a_copy_of_the_performance_document_unless_asked)
{
    struct run_result r;
    /* the plain build tree, whatever the make that runs the tests was given (SANITIZER=...) */
    sh(&r, "env -u MAKEFLAGS -u MAKELEVEL -u SANITIZER make -n bench 2>&1 | grep bench_doc.sh", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "docs/PERFORMANCE.md build/PERFORMANCE.md"), "into a copy: %s", r.out);
    sh(&r, "env -u MAKEFLAGS -u MAKELEVEL -u SANITIZER make -n bench BENCH_DOC=1 2>&1 | grep bench_doc.sh", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "docs/PERFORMANCE.md docs/PERFORMANCE.md"), "asked: %s", r.out);
    /* the script itself: the document given is read, the destination written */
    char *dir = th_tmpdir(), cmd[9000];
    snprintf(cmd, sizeof cmd,
             "printf 'a\\n<!-- make bench: begin -->\\nold\\n<!-- make bench: end -->\\nz\\n' > '%s/doc.md' && "
             "echo new > '%s/out.txt' && cp '%s/doc.md' '%s/before.md' && "
             "tools/bench_doc.sh '%s/out.txt' '%s/doc.md' '%s/copy.md' && cmp '%s/doc.md' '%s/before.md' && "
             "grep -q new '%s/copy.md'",
             dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    sh(&r, "%s", cmd);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
}

/* tools/bench_rotate.sh (issue 22's second harness): a mistyped setting stops it before any run,
 * with exit 2 and the setting named, rather than timing something else */
Test(make_bench, the_rotated_harness_refuses_a_bad_setting_before_running_anything)
{
    static const struct {
        const char *env, *says;
    } bad[] = {
        {"SPECS=10:35:1:cudaa", "bad spec '10:35:1:cudaa'"},
        {"SPECS=10:35:cuda", "bad spec '10:35:cuda'"},
        {"ROUNDS=abc", "not a count: 'abc'"},
        {"PAIRS=0", "ROUNDS and PAIRS must be at least 1"},
        {"SPIN_NS=fast", "SPIN_NS is not a number"},
        {"COARSE=yes", "COARSE must be 0 or 1"},
        {"SHIMS=/no/name.so", "bad SHIMS entry"},
        {"SHIMS=old=/no/such/libvramspy.so", "SHIMS: no file /no/such/libvramspy.so"},
        {"SHIMS=spin=/bin/true", "SHIMS name 'spin' is taken"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct run_result r;
        /* a build directory with nothing in it: the settings are checked before the files */
        sh(&r, "env %s tools/bench_rotate.sh /nonexistent-build", bad[i].env);
        cr_assert_eq(r.code, 2, "%s: exit %d: %s", bad[i].env, r.code, r.err);
        cr_assert_not_null(strstr(r.err, bad[i].says), "%s: %s", bad[i].env, r.err);
        cr_assert_eq(r.out[0], '\0', "%s: nothing measured: %s", bad[i].env, r.out);
    }
}
