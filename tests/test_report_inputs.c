/* Tests of the report's inputs (issue 20, items 17, 18, 19 and 20's plan and wording defects): a
 * FIFO or pipe as trace, --plan, --suppress or --purposes never hangs the report (a trace, read
 * more than once, is refused; the small inputs are read once); plan sizes that would overflow are
 * errors naming the field; names that are not UTF-8 or hold control bytes are escaped (\xNN) in
 * JSON and text, never dropped or printed raw; a Hugging Face config given as the plan gets a
 * hint, a tolerance above 1 is refused, nf4 is listed, and one of a thing is not plural (in the
 * report and in the shim's exit summary). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"

static void sh(struct run_result *r, const char *cmd)
{
    TH_SKIP_UNDER("tsan", "the report runs through /bin/sh here, which cannot start with the "
                          "ThreadSanitizer runtime preloaded");
    const char *argv[] = {"/bin/bash", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 1), 0);
}

/* ---- item 17: FIFOs and pipes ---- */

Test(report_inputs, a_fifo_without_a_writer_never_hangs_the_report, .timeout = 120)
{
    char *dir = th_tmpdir(), cmd[4000];
    const char *as[] = {"'%s/ff'", "--plan '%s/ff' tests/data/leaks.trace", "--suppress '%s/ff' tests/data/leaks.trace",
                        "--purposes '%s/ff' tests/data/leaks.trace"};
    for (size_t i = 0; i < sizeof as / sizeof *as; i++) {
        char args[1000];
        snprintf(args, sizeof args, as[i], dir);
        snprintf(cmd, sizeof cmd, "cd '" VSP_SOURCE_DIR "' && rm -f '%s/ff' && mkfifo '%s/ff' && exec '%s' %s", dir, dir,
                 REPORT, args);
        struct run_result r;
        sh(&r, cmd);
        cr_assert_eq(r.code, 2, "%s: %s", args, r.err);
    }
}

Test(report_inputs, a_pipe_is_read_once_as_plan_and_refused_as_trace, .timeout = 120)
{
    struct run_result r;
    sh(&r, "cd '" VSP_SOURCE_DIR "' && exec '" REPORT "' --fail-on plan --plan <(echo '{\"weights\": \"1MiB\"}') "
           "--suppress <(echo '[]') --purposes <(echo '{\"weights\": [\"nothing_*\"]}') tests/data/leaks.trace");
    cr_assert_eq(r.code, 1, "the plan was read (once) and measured: %s", r.err);
    cr_assert_not_null(strstr(r.out, "plan, at the device peak"), "%s", r.out);
    sh(&r, "cd '" VSP_SOURCE_DIR "' && exec '" REPORT "' <(cat tests/data/leaks.trace)");
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "not a regular file (a pipe or FIFO): a trace is read more than once"), "%s",
                       r.err);
}

/* ---- item 18 and 20: plans ---- */

static void plan_error(const char *plan_text, const char *expect)
{
    char *dir = th_tmpdir(), plan[300], cmd[2000];
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    th_write_file(plan, plan_text);
    snprintf(cmd, sizeof cmd, "exec '%s' --check-options --plan '%s'", REPORT, plan);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 2, "%s: %s", plan_text, r.err);
    cr_assert_not_null(strstr(r.err, expect), "%s: expected '%s' in: %s", plan_text, expect, r.err);
}

Test(report_inputs, plan_sizes_that_would_overflow_are_errors_naming_the_field)
{
    plan_error("{\"model\": {\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4}, "
               "\"context_length\": 16, \"num_parameters\": 1e300}",
               "field \"weights\": 2e+300 bytes computed from \"num_parameters\"");
    plan_error("{\"model\": {\"num_hidden_layers\": 1099511627776, \"hidden_size\": 1099511627776, "
               "\"num_attention_heads\": 1}, \"context_length\": 1099511627776, \"concurrency\": 1073741824, "
               "\"num_parameters\": 7e9}",
               "field \"kv_cache\": ");
    plan_error("{\"weights\": 1.8e19}", "field \"weights\": ");
    plan_error("{\"weights\": \"9223372036854775807\", \"kv_cache\": \"9223372036854775807\"}", "field \"weights\": ");
    plan_error("{\"weights\": \"2EiB\"}", "field \"weights\": ");
}

Test(report_inputs, plan_wording_hint_tolerance_and_quantizations)
{
    plan_error("{\"architectures\": [\"LlamaForCausalLM\"], \"num_hidden_layers\": 32, \"hidden_size\": 4096}",
               "looks like a Hugging Face config.json, which a plan names: {\"model\": \"config.json\"");
    plan_error("{\"weights\": \"1GiB\", \"tolerances\": {\"weights\": 2}}",
               "field \"tolerances.weights\": 2 is above 1: a tolerance is a fraction");
    plan_error("{\"model\": {\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4}, "
               "\"context_length\": 16, \"num_parameters\": 1000, \"quantization\": \"int3\"}",
               "nf4");
}

/* ---- item 19: names that are not text ---- */

static struct ring_fixture fx;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
    cr_assert_eq(ring_fixture_put(&fx, type, a, alen, b, blen), 0);
}

/* exe and argv with an invalid byte (0xff), an invalid sequence (0xc3 0x28) and an escape (0x1b);
 * the host name with a control byte; one leaked allocation. */
static void odd_names_trace(const char *path, uint32_t pid, int rank)
{
    cr_assert_eq(ring_fixture_open(&fx, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    fx.ring.hdr->start_realtime_ns = 1790000000000000000ull + pid;
    fx.ring.hdr->start_monotonic_ns = 5000000000ull + pid;
    static const char strs[] = "/opt/w\xffrk\x1b[31m\0w\xffrk\0--name=\xc3\x28x\0";
    struct vsp_rec_process p = {.pid = pid, .ppid = 1, .exe_len = 15, .argc = 2, .argv_len = sizeof strs - 15};
    put(VSP_REC_PROCESS, &p, sizeof p, strs, sizeof strs);
    static const char host[] = "node\x07" "a";
    struct vsp_rec_host h = {.rank = rank, .local_rank = 0, .world_size = 2, .host_len = sizeof host};
    put(VSP_REC_HOST, &h, sizeof h, host, sizeof host);
    struct vsp_rec_event e = {.time_ns = 5000001000ull + pid, .ptr = 0x7f9000000000ull, .size = 4096, .tid = pid,
                              .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE, .seq = 0,
                              .device = 0, .free_bytes = UINT64_MAX, .total_bytes = UINT64_MAX};
    put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    struct vsp_rec_end end = {0};
    put(VSP_REC_END, &end, sizeof end, NULL, 0);
    cr_assert_eq(ring_fixture_keep(&fx, path, 1), 0);
}

static int raw_bytes(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s == 0xff || *s == 0x1b || *s == 0x07 || (unsigned char)*s == 0xc3)
            return 1;
    return 0;
}

Test(report_inputs, names_that_are_not_utf8_are_escaped_never_dropped)
{
    char *dir = th_tmpdir(), a[300], b[300];
    snprintf(a, sizeof a, "%s/t\xfe.trace", dir); /* the trace's own path is not UTF-8 either */
    snprintf(b, sizeof b, "%s/b.trace", dir);
    odd_names_trace(a, 101, 0);
    odd_names_trace(b, 102, 1);
    struct run_result r;
    const char *json_argv[] = {REPORT, "--format", "json", a, NULL};
    cr_assert_eq(th_run(&r, json_argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out), *p = json_object_get(j, "process");
    cr_assert_str_eq(json_string_value(json_object_get(p, "exe")), "/opt/w\\xffrk\x1b[31m", "exe kept, escaped");
    json_t *av = json_object_get(p, "argv");
    cr_assert_eq(json_array_size(av), 2, "no argument dropped");
    cr_assert_str_eq(json_string_value(json_array_get(av, 1)), "--name=\\xc3(x");
    cr_assert_str_eq(json_string_value(json_object_get(p, "host")), "node\x07" "a", "valid UTF-8 kept as it is");
    cr_assert_not_null(strstr(json_string_value(json_object_get(json_object_get(j, "trace"), "path")), "/t\\xfe.trace"));
    json_decref(j);
    /* text: no raw control or invalid bytes */
    const char *text_argv[] = {REPORT, a, NULL};
    cr_assert_eq(th_run(&r, text_argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(!raw_bytes(r.out), "raw bytes in the text: %s", r.out);
    cr_assert_not_null(strstr(r.out, "process: pid 101, /opt/w\\xffrk\\x1b[31m --name=\\xc3(x (host node\\x07a, rank 0"),
                       "%s", r.out);
    /* a job of two: JSON keeps every field, text says no (null) */
    const char *job_json[] = {REPORT, "--job", "--format", "json", a, b, NULL};
    cr_assert_eq(th_run(&r, job_json, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    j = th_json(r.out);
    json_t *p0 = json_array_get(json_object_get(j, "processes"), 0);
    cr_assert(json_is_string(json_object_get(p0, "exe")), "exe dropped: %s", r.out);
    cr_assert(json_is_string(json_object_get(p0, "command_line")), "command_line dropped: %s", r.out);
    cr_assert(json_is_string(json_object_get(p0, "trace")), "trace dropped: %s", r.out);
    cr_assert_eq(json_array_size(json_object_get(p0, "argv")), 2);
    json_decref(j);
    const char *job_text[] = {REPORT, "--job", a, b, NULL};
    cr_assert_eq(th_run(&r, job_text, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_null(strstr(r.out, "(null)"), "%s", r.out);
    cr_assert(!raw_bytes(r.out), "raw bytes in the job text: %s", r.out);
    cr_assert_not_null(strstr(r.out, "  w\\xffrk\\x1b[31m --name=\\xc3(x\n"), "%s", r.out);
    /* the SVG and Perfetto documents parse: no raw bytes either */
    const char *svg_argv[] = {REPORT, "--format", "svg", a, NULL};
    cr_assert_eq(th_run(&r, svg_argv, NULL, 0, 1), 0);
    cr_assert(!raw_bytes(r.out), "raw bytes in the SVG");
    const char *pf_argv[] = {REPORT, "--format", "perfetto", a, NULL};
    cr_assert_eq(th_run(&r, pf_argv, NULL, 0, 1), 0);
    json_decref(th_json(r.out));
}

/* ---- item 20: one of a thing ---- */

Test(report_inputs, one_allocation_is_not_plural)
{
    char *dir = th_tmpdir(), a[300];
    snprintf(a, sizeof a, "%s/one.trace", dir);
    odd_names_trace(a, 7, 0);
    const char *argv[] = {REPORT, a, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert_not_null(strstr(r.out, "trace: complete, 1 event, 0 dropped"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "totals: 1 allocation (0 of host memory), 0 frees, 0 failed"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "live at end: 1 allocation, 4.0 KiB"), "%s", r.out);
    /* the shim's own exit summary too */
    const char *prog[] = {VSP_PROGS "/prog_die", "exit", "1", NULL};
    th_run_traced(&r, prog, dir, "die.trace", NULL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "1 allocation (0 of host memory), 0 failed, 0 frees;"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "live at exit: 1 allocation, 4.0 KiB"), "%s", r.err);
}
