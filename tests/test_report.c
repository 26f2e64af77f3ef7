/* Tests of vramspy-report: golden traces (tests/data/<name>.trace) against the expected JSON beside
 * them, each finding kind, exit codes and error messages, incomplete and forked-child traces, and
 * symbolisation of a real traced program (function, file and line from its debug information). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void golden(const char *name)
{
    struct run_result r;
    char args[512], expected_path[4200];
    snprintf(args, sizeof args, "--format json tests/data/%s.trace", name);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    snprintf(expected_path, sizeof expected_path, "%s/tests/data/%s.json", VSP_SOURCE_DIR, name);
    json_error_t err;
    json_t *want = json_load_file(expected_path, 0, &err);
    cr_assert_not_null(want, "%s: %s", expected_path, err.text);
    json_t *got = th_json(r.out);
    cr_assert(json_equal(got, want), "report of %s.trace differs from %s.json:\n%s", name, name, r.out);
    json_decref(got);
    json_decref(want);
}

Test(report_golden, leaks) { golden("leaks"); }
Test(report_golden, oom_and_fragmentation) { golden("oom"); }
Test(report_golden, invalid_free) { golden("invalid_free"); }
Test(report_golden, killed_trace_is_incomplete_not_an_error) { golden("killed"); }
Test(report_golden, forked_child) { golden("child"); }

static json_t *finding(json_t *rep, const char *kind, const char *api)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(rep, "findings"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "kind")), kind) &&
            (!api || !strcmp(json_string_value(json_object_get(f, "api")), api)))
            return f;
    }
    return NULL;
}

Test(report, each_finding_kind_has_its_fields)
{
    struct run_result r;
    th_report(&r, "--format json tests/data/leaks.trace");
    json_t *j = th_json(r.out);
    json_t *totals = json_object_get(j, "totals");
    cr_assert_eq(json_integer_value(json_object_get(totals, "allocations")), 5);
    cr_assert_eq(json_integer_value(json_object_get(totals, "frees")), 2);
    cr_assert_eq(json_integer_value(json_object_get(totals, "live_allocations")), 3);
    cr_assert_eq(json_integer_value(json_object_get(totals, "live_bytes")), 13 * 1024 * 1024);
    cr_assert_eq(json_integer_value(json_object_get(totals, "peak_bytes")), 28 * 1024 * 1024);
    json_t *leak = finding(j, "leak", "cudaMalloc");
    cr_assert_not_null(leak);
    cr_assert_eq(json_integer_value(json_object_get(leak, "count")), 2, "grouped by API and stack");
    cr_assert_eq(json_integer_value(json_object_get(leak, "bytes")), 12 * 1024 * 1024);
    cr_assert_str_eq(json_string_value(json_object_get(leak, "memory")), "device");
    json_t *frame = json_array_get(json_object_get(leak, "stack"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(frame, "address")), "0x4011d6");
    cr_assert_str_eq(json_string_value(json_object_get(frame, "module")), "/opt/bin/worker-orcd");
    cr_assert(json_is_null(json_object_get(frame, "function")));
    json_t *hf = finding(j, "host_fallback", "cudaMallocManaged");
    cr_assert_not_null(hf, "freed host memory is still host fallback");
    cr_assert(json_is_false(json_object_get(hf, "after_oom")));
    json_decref(j);

    th_report(&r, "--format json tests/data/oom.trace");
    j = th_json(r.out);
    json_t *oom = finding(j, "oom", "cuMemAlloc_v2");
    cr_assert_not_null(oom);
    cr_assert_eq(json_integer_value(json_object_get(oom, "requested")), 8 * 1024 * 1024);
    cr_assert_eq(json_integer_value(json_object_get(oom, "free_bytes")), 4 * 1024 * 1024);
    cr_assert_eq(json_integer_value(json_object_get(oom, "total_bytes")), 64 * 1024 * 1024);
    json_t *frag = finding(j, "fragmentation", "cudaMalloc");
    cr_assert_not_null(frag);
    cr_assert_geq(json_integer_value(json_object_get(frag, "free_bytes")),
                  json_integer_value(json_object_get(frag, "requested")));
    cr_assert_null(finding(j, "oom", "cudaMalloc"), "a fragmentation failure is not an exhaustion");
    cr_assert(json_is_true(json_object_get(finding(j, "host_fallback", NULL), "after_oom")));
    json_decref(j);

    th_report(&r, "--format json tests/data/invalid_free.trace");
    j = th_json(r.out);
    json_t *dbl = finding(j, "invalid_free", "cudaFree"), *unk = finding(j, "invalid_free", "cudaFreeHost");
    cr_assert_str_eq(json_string_value(json_object_get(dbl, "reason")), "double_free");
    cr_assert_str_eq(json_string_value(json_object_get(dbl, "address")), "0x7f1000000000");
    cr_assert_str_eq(json_string_value(json_object_get(unk, "reason")), "unknown_pointer");
    json_decref(j);
}

Test(report, exit_codes_follow_fail_on)
{
    struct run_result r;
    th_report(&r, "--fail-on leak tests/data/leaks.trace");
    cr_assert_eq(r.code, 1);
    th_report(&r, "--fail-on oom,fragmentation tests/data/leaks.trace");
    cr_assert_eq(r.code, 0);
    th_report(&r, "--fail-on host-fallback tests/data/oom.trace");
    cr_assert_eq(r.code, 1);
    th_report(&r, "--fail-on fragmentation tests/data/oom.trace");
    cr_assert_eq(r.code, 1);
    th_report(&r, "--fail-on oom tests/data/oom.trace");
    cr_assert_eq(r.code, 1);
    th_report(&r, "--fail-on invalid-free tests/data/invalid_free.trace");
    cr_assert_eq(r.code, 1);
    th_report(&r, "--fail-on any tests/data/child.trace");
    cr_assert_eq(r.code, 0);
    th_report(&r, "tests/data/leaks.trace");
    cr_assert_eq(r.code, 0, "no --fail-on: 0 whatever was found");
    th_report(&r, "--fail-on leak tests/data/child.trace tests/data/leaks.trace");
    cr_assert_eq(r.code, 1, "any trace with a finding fails the run");
}

Test(report, bad_input_and_usage_exit_2_with_one_clear_line)
{
    struct run_result r;
    th_report(&r, "tests/data/no-such.trace");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "tests/data/no-such.trace"), "%s", r.err);
    cr_assert_str_eq(r.out, "");
    th_report(&r, "README.md");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "README.md: not a vramspy trace"), "%s", r.err);
    th_report(&r, "--format yaml tests/data/leaks.trace");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "yaml"));
    th_report(&r, "--fail-on leaks tests/data/leaks.trace");
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "'leaks'"));
    /* an unknown option, one without its value, no trace: one line each, not the usage text */
    static const char *const bad[][2] = {{"--bogus tests/data/leaks.trace", "unknown option '--bogus'"},
                                         {"tests/data/leaks.trace --max-peak", "'--max-peak' needs a value"},
                                         {"", "no trace given"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        th_report(&r, bad[i][0]);
        cr_assert_eq(r.code, 2, "%s", bad[i][0]);
        cr_assert_not_null(strstr(r.err, bad[i][1]), "%s: %s", bad[i][0], r.err);
        cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "%s: one line, got: %s", bad[i][0], r.err);
    }
    th_report(&r, "--help");
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "--fail-on"));
    th_report(&r, "--version");
    cr_assert_eq(r.code, 0);
}

Test(report, corrupted_trace_names_the_offset)
{
    char *dir = th_tmpdir(), path[256], cmd[8400];
    snprintf(path, sizeof path, "%s/bad.trace", dir);
    /* leaks.trace is finalised, so its records are in the log after the 16 KiB ring; damage the
     * seq word of its first event (found with vramspy-dump) */
    snprintf(cmd, sizeof cmd, "cp '%s/tests/data/leaks.trace' '%s' && pos=$('%s/vramspy-dump' '%s' | "
             "grep -m1 '\"event\"' | sed 's/{\"pos\":\\([0-9]*\\).*/\\1/') && printf '\\377\\377' | "
             "dd of='%s' bs=1 seek=$((4096 + 16384 + pos)) conv=notrunc status=none",
             VSP_SOURCE_DIR, path, VSP_BUILD_DIR, path, path);
    cr_assert_eq(system(cmd), 0);
    struct run_result r;
    char args[4300];
    snprintf(args, sizeof args, "'%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "offset"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, path), "%s", r.err);
}

Test(report, several_traces_give_a_json_array)
{
    struct run_result r;
    th_report(&r, "--format json tests/data/leaks.trace tests/data/child.trace");
    cr_assert_eq(r.code, 0);
    json_t *j = th_json(r.out);
    cr_assert(json_is_array(j));
    cr_assert_eq(json_array_size(j), 2);
    json_t *child = json_array_get(j, 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(child, "process"), "ppid")), 4242);
    json_decref(j);
}

Test(report, text_has_totals_first_and_no_colour_off_a_terminal)
{
    struct run_result r;
    th_report(&r, "tests/data/leaks.trace");
    cr_assert_null(strchr(r.out, '\033'), "no escape codes when stdout is not a terminal");
    const char *totals = strstr(r.out, "totals:"), *leak = strstr(r.out, "LEAK 12.0 MiB");
    cr_assert_not_null(totals);
    cr_assert_not_null(leak, "%s", r.out);
    cr_assert_lt(totals, leak);
    cr_assert_not_null(strstr(r.out, "/opt/bin/worker-orcd+0x11d6"));
}

Test(report, real_program_is_symbolised_with_function_file_and_line)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/p.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "p.trace", NULL);
    char args[4300];
    snprintf(args, sizeof args, "--format json --fail-on leak '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 1, "%s", r.err);
    json_t *j = th_json(r.out);
    json_t *leak = finding(j, "leak", "cudaMalloc");
    cr_assert_not_null(leak);
    cr_assert_eq(json_integer_value(json_object_get(leak, "count")), 1, "d1 and d2 leak from two call sites");
    json_t *f0 = json_array_get(json_object_get(leak, "stack"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(f0, "function")), "basic", "%s", r.out);
    cr_assert_str_eq(json_string_value(json_object_get(f0, "file")), "prog_runtime.c");
    cr_assert_gt(json_integer_value(json_object_get(f0, "line")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(f0, "module")), VSP_PROGS "/prog_runtime");
    cr_assert_not_null(finding(j, "host_fallback", "cudaHostAlloc"));
    cr_assert_not_null(finding(j, "host_fallback", "cudaHostRegister"));
    cr_assert_not_null(finding(j, "host_fallback", "cudaMallocManaged"));
    cr_assert_not_null(finding(j, "invalid_free", "cudaFree"));
    cr_assert(json_is_true(json_object_get(json_object_get(j, "trace"), "complete")));
    json_decref(j);
}

Test(report, killed_program_trace_is_analysed)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/k.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_die", "kill", "50", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "k.trace", NULL);
    char args[4300];
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out);
    cr_assert(json_is_false(json_object_get(json_object_get(j, "trace"), "complete")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "totals"), "live_allocations")), 50);
    json_decref(j);
}

Test(report, sysroot_binary_with_other_build_id_is_flagged)
{
    char *dir = th_tmpdir(), path[4200], cmd[9000];
    snprintf(path, sizeof path, "%s/b.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_die", "exit", "3", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "b.trace", NULL);
    /* a "sysroot" whose copy of the program is another binary */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/root%s' && cp /bin/true '%s/root%s/prog_die'", dir, VSP_PROGS, dir,
             VSP_PROGS);
    cr_assert_eq(system(cmd), 0);
    char args[9000];
    snprintf(args, sizeof args, "--format json --sysroot '%s/root' '%s'", dir, path);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "build-id differs from the one recorded"), "%s", r.out);
}

Test(report, forked_parent_and_child_traces_are_reported_together)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_fork", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "f.%p.trace", NULL);
    char paths[4][4096];
    cr_assert_eq(th_list_traces(dir, paths, 4), 2);
    char args[9000];
    snprintf(args, sizeof args, "--format json --fail-on leak '%s' '%s'", paths[0], paths[1]);
    th_report(&r, args);
    cr_assert_eq(r.code, 1, "both processes leak: %s", r.err);
    json_t *j = th_json(r.out);
    cr_assert_eq(json_array_size(j), 2);
    json_t *a = json_object_get(json_array_get(j, 0), "process"), *b = json_object_get(json_array_get(j, 1), "process");
    json_int_t pa = json_integer_value(json_object_get(a, "pid")), pb = json_integer_value(json_object_get(b, "pid"));
    cr_assert(json_integer_value(json_object_get(a, "ppid")) == pb || json_integer_value(json_object_get(b, "ppid")) == pa,
              "one trace is the other's child");
    json_t *child = json_integer_value(json_object_get(a, "ppid")) == pb ? json_array_get(j, 0) : json_array_get(j, 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(child, "totals"), "live_allocations")), 5);
    json_decref(j);
}

static json_t *purpose(json_t *rep, const char *label)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(rep, "purposes"), i, p)
    {
        if (!strcmp(json_string_value(json_object_get(p, "label")), label))
            return p;
    }
    return NULL;
}

Test(report_purposes, labels_pushed_by_the_program_group_bytes)
{
    char *dir = th_tmpdir(), path[4200];
    snprintf(path, sizeof path, "%s/l.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_labels", NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, NULL, 0, 0), 0);
    cr_assert_str_eq(r.out, "labels 0 no shim\n", "the weak API does nothing without the shim");
    th_run_traced(&r, argv, dir, "l.trace", NULL);
    cr_assert_str_eq(r.out, "labels 0 shim\n");
    char args[4300];
    snprintf(args, sizeof args, "--format json '%s'", path);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out);
    json_t *w = purpose(j, "weights"), *kv = purpose(j, "kv_cache"), *un = purpose(j, "(unlabelled)");
    cr_assert_not_null(w, "%s", r.out);
    cr_assert_not_null(kv);
    cr_assert_not_null(un);
    cr_assert_eq(json_integer_value(json_object_get(w, "live_bytes")), 8 * 1024 * 1024);
    cr_assert_eq(json_integer_value(json_object_get(kv, "live_bytes")), 2 * 1024 * 1024);
    cr_assert_eq(json_integer_value(json_object_get(kv, "allocations")), 3);
    cr_assert_eq(json_integer_value(json_object_get(kv, "peak_bytes")), 3 * 1024 * 1024,
                 "the device peak (11 MiB) came with the third kv block, before one was freed");
    cr_assert_eq(json_integer_value(json_object_get(un, "live_bytes")), 512 * 1024);
    json_decref(j);
    snprintf(args, sizeof args, "'%s'", path);
    th_report(&r, args);
    cr_assert_not_null(strstr(r.out, "by purpose:"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "weights"), "%s", r.out);
}

Test(report_purposes, rules_file_labels_stacks_offline)
{
    char *dir = th_tmpdir(), rules[4200], args[9000];
    snprintf(rules, sizeof rules, "%s/p.json", dir);
    th_write_file(rules, "{\"engine\": {\"module\": [\"worker-orcd\"]}, \"never\": [\"nomatch*\"]}");
    struct run_result r;
    snprintf(args, sizeof args, "--format json --purposes '%s' tests/data/leaks.trace", rules);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out);
    json_t *e = purpose(j, "engine");
    cr_assert_not_null(e, "%s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(e, "live_bytes")), 12 * 1024 * 1024, "device bytes only");
    cr_assert_eq(json_integer_value(json_object_get(e, "host_live_bytes")), 1 * 1024 * 1024, "the pinned leak");
    cr_assert_eq(json_integer_value(json_object_get(e, "peak_bytes")), 28 * 1024 * 1024);
    cr_assert_null(purpose(j, "never"));
    json_decref(j);
    th_write_file(rules, "{\"engine\": 3}");
    snprintf(args, sizeof args, "--purposes '%s' tests/data/leaks.trace", rules);
    th_report(&r, args);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "at byte"), "%s", r.err);
}

Test(report_purposes, shim_rules_label_the_out_of_memory_breakdown)
{
    char *dir = th_tmpdir(), rules[4200], envp[4300];
    snprintf(rules, sizeof rules, "%s/p.json", dir);
    snprintf(envp, sizeof envp, "VRAMSPY_PURPOSES=%s", rules);
    th_write_file(rules, "{\"blocks\": {\"function\": [\"main\"]}}");
    const char *argv[] = {VSP_PROGS "/prog_runtime", "frag", NULL};
    const char *env[] = {envp, "VSP_FAKE_DEVICE_MEM=64M", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "o.trace", env);
    cr_assert_eq(r.code, 0, "%s", r.err);
    const char *b = strstr(r.err, "by purpose:");
    cr_assert_not_null(b, "%s", r.err);
    cr_assert_not_null(strstr(b, "32.0 MiB  blocks"), "%s", r.err);
    char args[4400];
    snprintf(args, sizeof args, "--format json '%s/o.trace'", dir);
    th_report(&r, args);
    json_t *j = th_json(r.out);
    cr_assert_not_null(purpose(j, "blocks"), "the labels are in the trace: %s", r.out);
    json_decref(j);
}
