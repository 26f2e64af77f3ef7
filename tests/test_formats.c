/* Tests of the report's JUnit and SVG renderings (report/out/formats.c): JUnit that a CI can trust
 * (failures only for --fail-on kinds, names stable across runs and distinct for children, invalid
 * frees with their address, no peak check without a budget, valid XML whatever the command line),
 * and an SVG timeline read without hovering (legend, round ticks, a host band, one time axis for
 * several processes). Everything is parsed with python3's xml.etree, as a CI or a browser would. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"
#define MiB (1024ull * 1024ull)

/* ---- synthetic traces, written with the shim's own ring writer (as tests/golden_gen.c) ---- */

struct tw {
    struct ring_fixture f;
    uint64_t now;
};

static void tw_put(struct tw *w, uint16_t type, const void *a, size_t alen, const void *b, size_t blen,
                   const void *c, size_t clen)
{
    cr_assert_eq(ring_fixture_write(&w->f, type, a, alen, b, blen, c, clen), 0);
}

/* A process `exe` with NUL-separated args; its clocks start at the given wall-clock and monotonic
 * times (0, 0: unknown, as in the golden traces). */
static void tw_begin(struct tw *w, uint32_t pid, uint32_t ppid, const char *exe, const char *args, size_t args_len,
                     uint32_t argc, uint64_t realtime, uint64_t monotonic)
{
    cr_assert_eq(ring_fixture_open(&w->f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_file_header *h = w->f.map;
    h->version = 1; /* version-1 events (no seq), as golden_gen writes them */
    h->pid = pid;
    h->start_realtime_ns = realtime;
    h->start_monotonic_ns = monotonic;
    w->now = monotonic ? monotonic : 1000000000ull;
    struct vsp_rec_process p = {.pid = pid, .ppid = ppid, .exe_len = (uint32_t)strlen(exe) + 1, .argc = argc,
                                .argv_len = (uint32_t)args_len, .depth = 64, .start_realtime_ns = realtime};
    strcpy(p.shim_version, "test");
    tw_put(w, VSP_REC_PROCESS, &p, sizeof p, exe, strlen(exe) + 1, args, args_len);
    struct vsp_rec_module m = {.base = 0x400000, .start = 0x400000, .end = 0x410000,
                               .path_len = (uint32_t)strlen(exe) + 1, .build_id_len = 4};
    tw_put(w, VSP_REC_MODULE, &m, sizeof m, "\xde\xad\xbe\xef", 4, exe, strlen(exe) + 1);
    struct vsp_rec_stack s = {.id = 1, .nframes = 2};
    uint64_t frames[2] = {0x4011d6, 0x401100};
    tw_put(w, VSP_REC_STACK, &s, sizeof s, frames, sizeof frames, NULL, 0);
}

static void tw_event(struct tw *w, uint64_t dt_ns, uint16_t api, uint8_t op, uint8_t mem, uint64_t ptr, uint64_t size,
                     int32_t result)
{
    struct vsp_rec_event e = {.time_ns = (w->now += dt_ns), .ptr = ptr, .size = size, .free_bytes = UINT64_MAX,
                              .total_bytes = UINT64_MAX, .stack_id = 1, .tid = 1, .result = result, .api = api,
                              .op = op, .memory = mem};
    tw_put(w, VSP_REC_EVENT, &e, VSP_REC_EVENT_V1_SIZE, NULL, 0, NULL, 0);
}

/* Finalise (or not: a process that died) and move the file to dir/name; the path, quoted for the
 * report's shell command line, into arg (4300 bytes) when not NULL. */
static void tw_end(struct tw *w, const char *dir, const char *name, int finalize, uint64_t dropped, char *arg)
{
    if (finalize) {
        struct vsp_rec_end e = {.time_ns = w->now};
        tw_put(w, VSP_REC_END, &e, sizeof e, NULL, 0, NULL, 0);
    }
    w->f.ring.hdr->dropped = dropped;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(ring_fixture_keep(&w->f, path, finalize), 0);
    if (arg)
        snprintf(arg, 4300, "'%s'", path);
}

/* ---- running the report and reading its XML ---- */

static json_t *svg_facts(const char *opts, const char *traces, const char *dir);

static void sh(struct run_result *r, const char *cmd)
{
    TH_SKIP_UNDER("tsan", "shell pipelines cannot start with the ThreadSanitizer runtime preloaded");
    char full[9000];
    snprintf(full, sizeof full, "cd '%s' && %s", VSP_SOURCE_DIR, cmd);
    const char *argv[] = {"/bin/sh", "-c", full, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 0), 0);
}

/* JUnit XML at `xml` parsed by xml.etree into
 * [{"suite", "tests", "failures", "cases": [{"classname", "name", "failure": message|null, "text"}], "out"}]. */
static json_t *junit_parse(const char *xml)
{
    static const char py[] =
        "import sys, json, xml.etree.ElementTree as E\n"
        "r = E.parse(sys.argv[1]).getroot()\n"
        "out = []\n"
        "for s in r.iter('testsuite'):\n"
        "    cs = []\n"
        "    for c in s.iter('testcase'):\n"
        "        f = c.find('failure')\n"
        "        cs.append({'classname': c.get('classname'), 'name': c.get('name'),\n"
        "                   'failure': None if f is None else f.get('message'), 'text': '' if f is None else f.text})\n"
        "    so = s.find('system-out')\n"
        "    out.append({'suite': s.get('name'), 'tests': int(s.get('tests')), 'failures': int(s.get('failures')),\n"
        "                'cases': cs, 'out': '' if so is None else so.text})\n"
        "print(json.dumps(out))\n";
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "python3 -c \"$0\" '%s'", xml);
    const char *argv[] = {"/bin/sh", "-c", cmd, py, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "xml.etree parses the JUnit: %s", r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    return j;
}

static json_t *junit_of(const char *opts, const char *traces, const char *dir, int expect_code)
{
    char cmd[9000], xml[4300];
    snprintf(xml, sizeof xml, "%s/junit.xml", dir);
    snprintf(cmd, sizeof cmd, REPORT " --format junit %s -o '%s' %s", opts, xml, traces);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, expect_code, "%s: %s", cmd, r.err);
    return junit_parse(xml);
}

static json_t *case_named(json_t *suite, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(suite, "cases"), i, c) if (!strcmp(json_string_value(json_object_get(c, "name")),
                                                                           name)) return c;
    return NULL;
}

Test(report_junit, fails_only_for_fail_on_kinds)
{
    char *dir = th_tmpdir();
    /* leaks.trace has leaks and host fallbacks; only invalid frees are asked about */
    json_t *j = junit_of("--fail-on invalid-free", "tests/data/leaks.trace", dir, 0);
    cr_assert_eq(json_array_size(j), 1);
    json_t *s = json_array_get(j, 0);
    cr_assert_eq(json_integer_value(json_object_get(s, "failures")), 0, "leaks are not a --fail-on kind");
    cr_assert_eq(json_array_size(json_object_get(s, "cases")), 1, "one case per --fail-on kind");
    json_t *c = case_named(s, "invalid_free");
    cr_assert_not_null(c);
    cr_assert(json_is_null(json_object_get(c, "failure")));
    const char *out = json_string_value(json_object_get(s, "out"));
    cr_assert_not_null(strstr(out, "leak: 12.0 MiB"), "other findings are in <system-out>: %s", out);
    cr_assert_not_null(strstr(out, "host_fallback:"), "%s", out);
    json_decref(j);

    j = junit_of("--fail-on leak", "tests/data/leaks.trace", dir, 1);
    s = json_array_get(j, 0);
    cr_assert_eq(json_integer_value(json_object_get(s, "failures")), 1);
    c = case_named(s, "leak");
    cr_assert_not_null(c);
    const char *msg = json_string_value(json_object_get(c, "failure"));
    cr_assert_not_null(msg);
    cr_assert_not_null(strstr(msg, "2 leak findings"), "the message lists them: %s", msg);
    cr_assert_not_null(strstr(msg, "12.0 MiB"), "%s", msg);
    cr_assert_null(case_named(s, "host_fallback"), "no case for a kind not asked about");
    json_decref(j);
}

Test(report_junit, uncertain_findings_are_not_failures)
{
    char *dir = th_tmpdir();
    struct tw w;
    static const char args[] = "lossy\0--batch\0" "8";
    tw_begin(&w, 5001, 1, "/opt/bin/lossy", args, sizeof args, 3, 0, 0);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0x7f0000000000, 4 * MiB, 0);
    char trace[4300];
    tw_end(&w, dir, "lossy.trace", 1, 17, trace);
    json_t *j = junit_of("--fail-on leak", trace, dir, 0);
    json_t *s = json_array_get(j, 0);
    json_t *c = case_named(s, "leak");
    cr_assert_not_null(c);
    cr_assert(json_is_null(json_object_get(c, "failure")), "17 events were lost: the leak may not be one");
    const char *out = json_string_value(json_object_get(s, "out"));
    cr_assert_not_null(strstr(out, "uncertain: 17 events lost"), "%s", out);
    json_decref(j);
}

Test(report_junit, names_are_the_same_across_runs_and_hold_no_pid)
{
    char *dir = th_tmpdir();
    char names[2][512];
    for (int run = 0; run < 2; run++) {
        char out[4300], trace[4400];
        snprintf(out, sizeof out, "VRAMSPY_OUT=%s/run%d.trace", dir, run);
        snprintf(trace, sizeof trace, "'%s/run%d.trace'", dir, run);
        const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
        const char *env[] = {out, NULL};
        struct run_result r;
        cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
        json_t *j = junit_of("--fail-on leak,oom", trace, dir, 1);
        json_t *s = json_array_get(j, 0);
        snprintf(names[run], sizeof names[run], "%s", json_string_value(json_object_get(s, "suite")));
        char pid[32];
        snprintf(pid, sizeof pid, "%d", r.pid);
        cr_assert_null(strstr(names[run], pid), "no pid in %s", names[run]);
        cr_assert_not_null(strstr(names[run], "prog_runtime basic"), "executable and arguments: %s", names[run]);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(s, "cases"), i, c)
            cr_assert_null(strstr(json_string_value(json_object_get(c, "classname")), pid));
        json_decref(j);
    }
    cr_assert_str_eq(names[0], names[1]);
}

Test(report_junit, children_are_told_apart)
{
    char *dir = th_tmpdir();
    char out[4300], paths[4][4096];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/fork.%%p.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_fork", NULL};
    const char *env[] = {out, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    cr_assert_eq(th_list_traces(dir, paths, 4), 2);
    char traces[9000];
    snprintf(traces, sizeof traces, "'%s' '%s'", paths[0], paths[1]);
    json_t *j = junit_of("--fail-on leak", traces, dir, 1);
    cr_assert_eq(json_array_size(j), 2);
    const char *a = json_string_value(json_object_get(json_array_get(j, 0), "suite"));
    const char *b = json_string_value(json_object_get(json_array_get(j, 1), "suite"));
    cr_assert_str_neq(a, b, "a parent and its forked child share a command line, not a name");
    cr_assert_not_null(strstr(a, "prog_fork"), "%s", a);
    cr_assert_not_null(strstr(b, "prog_fork"), "%s", b);
    const char *ca = json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(j, 0), "cases"), 0), "classname"));
    const char *cb = json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(j, 1), "cases"), 0), "classname"));
    cr_assert_str_neq(ca, cb, "test cases are told apart too");
    /* the same names in the same order whichever order the traces are given in */
    char first[2][512];
    snprintf(first[0], sizeof first[0], "%s", a);
    snprintf(first[1], sizeof first[1], "%s", b);
    json_decref(j);
    snprintf(traces, sizeof traces, "'%s' '%s'", paths[1], paths[0]);
    j = junit_of("--fail-on leak", traces, dir, 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "suite")), first[0]);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "suite")), first[1]);
    json_decref(j);
}

Test(report_junit, identical_processes_get_ordinals)
{
    char *dir = th_tmpdir();
    json_t *j = junit_of("--fail-on leak", "tests/data/leaks.trace tests/data/killed.trace tests/data/child.trace", dir, 1);
    cr_assert_eq(json_array_size(j), 3);
    const char *n[3];
    for (int i = 0; i < 3; i++)
        n[i] = json_string_value(json_object_get(json_array_get(j, (size_t)i), "suite"));
    cr_assert_str_eq(n[0], "vramspy: worker-orcd --port 8080");
    cr_assert_str_eq(n[1], "vramspy: worker-orcd --port 8080 #2");
    cr_assert_str_eq(n[2], "vramspy: worker-orcd --port 8080 [child]", "its parent (pid 4242) is among the traces");
    json_decref(j);
}

Test(report_junit, invalid_free_message_has_address_and_reason)
{
    char *dir = th_tmpdir();
    json_t *j = junit_of("--fail-on invalid-free", "tests/data/invalid_free.trace", dir, 1);
    json_t *c = case_named(json_array_get(j, 0), "invalid_free");
    cr_assert_not_null(c);
    const char *msg = json_string_value(json_object_get(c, "failure"));
    cr_assert_not_null(msg);
    cr_assert_not_null(strstr(msg, "cudaFree of 0x7f1000000000: double free"), "%s", msg);
    cr_assert_not_null(strstr(msg, "cudaFreeHost of 0x1234: unknown pointer"), "%s", msg);
    cr_assert_null(strstr(msg, "0 bytes"), "%s", msg);
    json_decref(j);
}

Test(report_junit, no_peak_case_without_max_peak)
{
    char *dir = th_tmpdir();
    json_t *j = junit_of("--fail-on any", "tests/data/leaks.trace", dir, 1);
    json_t *s = json_array_get(j, 0);
    cr_assert_null(case_named(s, "peak"), "no budget, no peak check");
    cr_assert_not_null(case_named(s, "leak"));
    cr_assert_not_null(case_named(s, "crash"), "--fail-on any covers the new kinds");
    cr_assert_not_null(case_named(s, "alloc_error"));
    json_decref(j);
    j = junit_of("--max-peak 16MiB --fail-on peak", "tests/data/leaks.trace", dir, 1);
    json_t *c = case_named(json_array_get(j, 0), "peak");
    cr_assert_not_null(c);
    const char *msg = json_string_value(json_object_get(c, "failure"));
    cr_assert_not_null(msg);
    cr_assert_not_null(strstr(msg, "28.0 MiB"), "%s", msg);
    cr_assert_not_null(strstr(msg, "16.0 MiB"), "%s", msg);
    json_decref(j);
}

Test(report_junit, crash_and_alloc_error_fail_their_cases)
{
    char *dir = th_tmpdir();
    struct tw w;
    static const char args[] = "nodriver";
    /* pid 1 is init: never this process, so the unfinished trace is of a process that is gone */
    tw_begin(&w, 4999999, 1, "/opt/bin/nodriver", args, sizeof args, 1, 0, 0);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0, 1 * MiB, 35);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0, 1 * MiB, 35);
    char trace[4300];
    tw_end(&w, dir, "nodriver.trace", 0, 0, trace);
    json_t *j = junit_of("--fail-on crash,alloc-error", trace, dir, 1);
    json_t *s = json_array_get(j, 0);
    json_t *c = case_named(s, "alloc_error");
    cr_assert_not_null(c);
    const char *msg = json_string_value(json_object_get(c, "failure"));
    cr_assert_not_null(msg);
    cr_assert_not_null(strstr(msg, "cudaMalloc failed with 35 (cudaErrorInsufficientDriver), 2 calls"), "%s", msg);
    c = case_named(s, "crash");
    cr_assert_not_null(c);
    cr_assert_not_null(json_string_value(json_object_get(c, "failure")), "no END and the process is gone");
    json_decref(j);
}

Test(report_junit, any_command_line_gives_valid_xml)
{
    char *dir = th_tmpdir();
    struct tw w;
    /* markup, quotes, a control character and bytes that are not UTF-8 */
    static const char args[] = "odd<&>\"'\x01\xff\xfe name\0--x=\xc3\x28]]>";
    tw_begin(&w, 5002, 1, "/opt/bin/odd<&>\"'\x01\xff\xfe name", args, sizeof args, 2, 0, 0);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0x7f0000000000, 4 * MiB, 0);
    char trace[4300];
    tw_end(&w, dir, "odd.trace", 1, 0, trace);
    json_t *j = junit_of("--fail-on leak", trace, dir, 1);
    const char *name = json_string_value(json_object_get(json_array_get(j, 0), "suite"));
    cr_assert_not_null(strstr(name, "odd<&>\"'"), "%s", name);
    json_decref(j);
    j = svg_facts("", trace, dir); /* the SVG names it too */
    json_decref(j);
}

/* ---- SVG ---- */

/* Facts about an SVG as xml.etree reads it: the time tick labels, the byte tick labels, the legend's
 * texts, the process names, the host bands, the x of each process's start mark, the time-axis groups. */
static json_t *svg_facts(const char *opts, const char *traces, const char *dir)
{
    char cmd[9000], svg[4300];
    snprintf(svg, sizeof svg, "%s/t.svg", dir);
    snprintf(cmd, sizeof cmd, REPORT " --format svg %s -o '%s' %s", opts, svg, traces);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s: %s", cmd, r.err);
    static const char py[] =
        "import sys, json, xml.etree.ElementTree as E\n"
        "N = '{http://www.w3.org/2000/svg}'\n"
        "r = E.parse(sys.argv[1]).getroot()\n"
        "def texts(cls):\n"
        "    return [t.text for t in r.iter(N + 'text') if t.get('class') == cls]\n"
        "leg = [g for g in r.iter(N + 'g') if g.get('id') == 'legend']\n"
        "print(json.dumps({'time': texts('time-tick'), 'bytes': texts('byte-tick'), 'names': texts('process-name'),\n"
        "  'legend': [t.text for g in leg for t in g.iter(N + 'text')],\n"
        "  'host_bands': len([e for e in r.iter(N + 'rect') if e.get('class') == 'host-band']),\n"
        "  'starts': [float(e.get('x1')) for e in r.iter(N + 'line') if e.get('class') == 'start'],\n"
        "  'axes': len([g for g in r.iter(N + 'g') if g.get('id') == 'time-axis']),\n"
        "  'live': len([g for g in r.iter(N + 'g') if g.get('class') == 'live-at-end']),\n"
        "  'marks': sorted(set(g.get('class') for g in r.iter(N + 'g') if (g.get('class') or '').startswith('mark-')))}))\n";
    snprintf(cmd, sizeof cmd, "python3 -c \"$0\" '%s'", svg);
    const char *argv[] = {"/bin/sh", "-c", cmd, py, NULL};
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "xml.etree parses the SVG: %s", r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_assert_not_null(j, "%s", r.out);
    return j;
}

static int has_text(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
    return 0;
}

static double absd(double x)
{
    return x < 0 ? -x : x;
}

/* 5 to 10 labels, 0 first, evenly spaced by {1, 2, 2.5, 5} x 10^k. */
static void assert_round_time_ticks(json_t *ticks)
{
    size_t n = json_array_size(ticks);
    cr_assert(n >= 5 && n <= 10, "%zu time ticks", n);
    double v[16];
    for (size_t i = 0; i < n; i++)
        v[i] = strtod(json_string_value(json_array_get(ticks, i)), NULL);
    cr_assert_eq(v[0], 0.0);
    double step = v[1] - v[0];
    cr_assert_gt(step, 0);
    double m = step;
    while (m >= 10 - 1e-9)
        m /= 10;
    while (m < 1 - 1e-9)
        m *= 10;
    cr_assert(absd(m - 1) < 1e-6 || absd(m - 2) < 1e-6 || absd(m - 2.5) < 1e-6 || absd(m - 5) < 1e-6,
              "step %g is round", step);
    for (size_t i = 1; i < n; i++)
        cr_assert(absd(v[i] - v[i - 1] - step) < 1e-6 * (step + 1), "even ticks: %g then %g", v[i - 1], v[i]);
}

Test(report_svg, well_formed_with_legend_and_live_bytes_at_exit)
{
    char *dir = th_tmpdir();
    json_t *j = svg_facts("", "tests/data/oom.trace", dir);
    json_t *leg = json_object_get(j, "legend");
    cr_assert(has_text(leg, "device"), "the legend names the memory kinds");
    cr_assert(has_text(leg, "managed (host)"));
    cr_assert(has_text(leg, "out of memory"), "and the failure marks by kind");
    cr_assert(has_text(leg, "fragmentation"));
    cr_assert(has_text(leg, "host fallback"));
    json_t *marks = json_object_get(j, "marks");
    cr_assert(has_text(marks, "mark-oom") && has_text(marks, "mark-fragmentation") && has_text(marks, "mark-host_fallback"));
    cr_assert_eq(json_integer_value(json_object_get(j, "live")), 2, "live bytes at exit: the device and the host band");
    json_decref(j);
}

Test(report_svg, time_ticks_are_few_and_round)
{
    char *dir = th_tmpdir();
    /* 7 events 1 ms apart, and a 3.7 s run */
    json_t *j = svg_facts("", "tests/data/leaks.trace", dir);
    assert_round_time_ticks(json_object_get(j, "time"));
    json_decref(j);
    struct tw w;
    static const char args[] = "long";
    tw_begin(&w, 5003, 1, "/opt/bin/long", args, sizeof args, 1, 0, 0);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0x7f0000000000, 4 * MiB, 0);
    tw_event(&w, 3700000000ull, VSP_API_cudaFree, VSP_OP_FREE, VSP_MEM_DEVICE, 0x7f0000000000, 0, 0);
    char trace[4300];
    tw_end(&w, dir, "long.trace", 1, 0, trace);
    j = svg_facts("", trace, dir);
    json_t *t = json_object_get(j, "time");
    assert_round_time_ticks(t);
    cr_assert(has_text(t, "0.5") || has_text(t, "1"), "seconds");
    json_decref(j);
}

Test(report_svg, byte_ticks_are_round)
{
    char *dir = th_tmpdir();
    /* a 28 MiB device peak: 0, 8, 16, 24, 32 MiB (not 7, 14, 21, 28) */
    json_t *j = svg_facts("", "tests/data/leaks.trace", dir);
    json_t *b = json_object_get(j, "bytes");
    cr_assert(has_text(b, "0") && has_text(b, "8 MiB") && has_text(b, "16 MiB") && has_text(b, "24 MiB") &&
              has_text(b, "32 MiB"), "%s", json_dumps(b, 0));
    json_decref(j);
}

Test(report_svg, host_memory_gets_its_own_band)
{
    char *dir = th_tmpdir();
    struct tw w;
    static const char args[] = "big\0--model\0" "70b";
    tw_begin(&w, 5004, 1, "/opt/bin/big", args, sizeof args, 3, 0, 0);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0x7f0000000000, 8192 * MiB, 0);
    tw_event(&w, 500000000, VSP_API_cudaMallocManaged, VSP_OP_ALLOC, VSP_MEM_MANAGED, 0x7f8000000000, 64 * 1024, 0);
    tw_event(&w, 1000, VSP_API_cudaFree, VSP_OP_FREE, VSP_MEM_DEVICE, 0x7f0000000000, 0, 0);
    char trace[4300];
    tw_end(&w, dir, "big.trace", 1, 0, trace);
    json_t *j = svg_facts("", trace, dir);
    cr_assert_eq(json_integer_value(json_object_get(j, "host_bands")), 1, "64 KiB of managed memory beside 8 GiB");
    json_t *b = json_object_get(j, "bytes");
    cr_assert(has_text(b, "8 GiB"), "%s", json_dumps(b, 0));
    cr_assert(has_text(b, "64 KiB"), "the host band has its own scale: %s", json_dumps(b, 0));
    json_decref(j);
    j = svg_facts("", "tests/data/child.trace", dir);
    cr_assert_eq(json_integer_value(json_object_get(j, "host_bands")), 0, "no host memory, no host band");
    json_decref(j);
}

Test(report_svg, several_processes_share_one_time_axis)
{
    char *dir = th_tmpdir();
    struct tw w;
    static const char pa[] = "server\0--port\0" "80", ca[] = "server\0--port\0" "80";
    uint64_t rt = 1700000000000000000ull;
    /* the parent's clocks and the child's, started 2 s later (its own monotonic base) */
    tw_begin(&w, 6001, 1, "/opt/bin/server", pa, sizeof pa, 3, rt, 5000000000ull);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0x7f0000000000, 64 * MiB, 0);
    tw_event(&w, 3000000000ull, VSP_API_cudaFree, VSP_OP_FREE, VSP_MEM_DEVICE, 0x7f0000000000, 0, 0);
    tw_end(&w, dir, "a.trace", 1, 0, NULL);
    tw_begin(&w, 6002, 6001, "/opt/bin/server", ca, sizeof ca, 3, rt + 2000000000ull, 900000000000ull);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0x7f0000000000, 16 * MiB, 0);
    tw_event(&w, 500000000, VSP_API_cudaFree, VSP_OP_FREE, VSP_MEM_DEVICE, 0x7f0000000000, 0, 0);
    tw_end(&w, dir, "b.trace", 1, 0, NULL);
    char traces[9000];
    /* the child first: panels come in order of start anyway */
    snprintf(traces, sizeof traces, "'%s/b.trace' '%s/a.trace'", dir, dir);
    json_t *j = svg_facts("", traces, dir);
    cr_assert_eq(json_integer_value(json_object_get(j, "axes")), 1, "one time axis");
    assert_round_time_ticks(json_object_get(j, "time"));
    json_t *names = json_object_get(j, "names");
    cr_assert_eq(json_array_size(names), 2);
    cr_assert_str_eq(json_string_value(json_array_get(names, 0)), "server --port 80");
    cr_assert_str_eq(json_string_value(json_array_get(names, 1)), "server --port 80 [child]");
    json_t *st = json_object_get(j, "starts");
    cr_assert_eq(json_array_size(st), 2);
    double x0 = json_real_value(json_array_get(st, 0)), x1 = json_real_value(json_array_get(st, 1));
    /* 2 s into a 3.001 s axis of 660 pixels from x = 96 */
    cr_assert(absd(x1 - x0 - 2.0 / 3.001 * 660) < 2, "the child starts 2 s after its parent: %g %g", x0, x1);
    json_decref(j);
}

Test(report_svg, a_process_without_allocations_still_draws)
{
    char *dir = th_tmpdir();
    struct tw w;
    static const char args[] = "idle";
    tw_begin(&w, 5005, 1, "/opt/bin/idle", args, sizeof args, 1, 0, 0);
    char trace[4300];
    tw_end(&w, dir, "idle.trace", 1, 0, trace);
    json_t *j = svg_facts("", trace, dir);
    cr_assert_eq(json_array_size(json_object_get(j, "names")), 1);
    cr_assert(has_text(json_object_get(j, "legend"), "nothing allocated"));
    json_decref(j);
    j = junit_of("", trace, dir, 0);
    json_t *s = json_array_get(j, 0);
    cr_assert_not_null(case_named(s, "analysed"), "without --fail-on: one passing case per process");
    cr_assert_eq(json_integer_value(json_object_get(s, "failures")), 0);
    json_decref(j);
}

Test(report_perfetto, crash_and_alloc_error_are_instants)
{
    char *dir = th_tmpdir();
    struct tw w;
    static const char args[] = "nodriver";
    tw_begin(&w, 4999998, 1, "/opt/bin/nodriver", args, sizeof args, 1, 0, 0);
    tw_event(&w, 1000000, VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0, 1 * MiB, 35);
    char trace[4300], cmd[9000];
    tw_end(&w, dir, "nodriver.trace", 0, 0, trace);
    snprintf(cmd, sizeof cmd, REPORT " --format perfetto %s", trace);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    size_t i, crash = 0, err = 0;
    json_t *e;
    json_array_foreach(json_object_get(j, "traceEvents"), i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        crash += !strcmp(name, "crash");
        if (!strcmp(name, "allocation error")) {
            err++;
            cr_assert_eq(json_integer_value(json_object_get(json_object_get(e, "args"), "result")), 35);
        }
    }
    cr_assert_eq(crash, 1);
    cr_assert_eq(err, 1);
    json_decref(j);
}
