/* Verdicts that hold on framework processes (issue 19): memory a framework keeps until exit on
 * purpose is "cached" (holder rules), not "leak"; a call site whose live bytes keep rising through
 * the second half of the run is "growth"; what stream-ordered pools cache is its own part of
 * coverage, sampled at exit while the runtime still works. The programs (tests/progs/prog_holders,
 * prog_growth, prog_pool_cache) carry the frame names the real frameworks allocate under. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"
#define CUBLAS_DIR VSP_PROGS "/cublas"

static json_t *findings(json_t *rep)
{
    return json_object_get(rep, "findings");
}

static size_t count_kind(json_t *rep, const char *kind)
{
    size_t n = 0, i;
    json_t *f;
    json_array_foreach(findings(rep), i, f) n += !strcmp(json_string_value(json_object_get(f, "kind")), kind);
    return n;
}

/* The cached finding held by `by` (the first), or NULL; *bytes and *count (when given) receive the
 * sums over all of that holder's findings (one per call site). */
static json_t *held_by_sum(json_t *rep, const char *by, json_int_t *bytes, json_int_t *count)
{
    size_t i;
    json_t *f, *first = NULL;
    if (bytes)
        *bytes = 0;
    if (count)
        *count = 0;
    json_array_foreach(findings(rep), i, f)
    {
        const char *h = json_string_value(json_object_get(f, "held_by"));
        if (strcmp(json_string_value(json_object_get(f, "kind")), "cached") || !h || strcmp(h, by))
            continue;
        first = first ? first : f;
        if (bytes)
            *bytes += json_integer_value(json_object_get(f, "bytes"));
        if (count)
            *count += json_integer_value(json_object_get(f, "count"));
    }
    return first;
}

static json_t *held_by(json_t *rep, const char *by)
{
    return held_by_sum(rep, by, NULL, NULL);
}

static const char *innermost_function(json_t *f)
{
    json_t *st = json_object_get(f, "stack");
    cr_assert(json_array_size(st) > 0, "a stack");
    const char *fn = json_string_value(json_object_get(json_array_get(st, 0), "function"));
    return fn ? fn : "";
}

/* Run prog_holders (leak or noleak) under the shim; the trace's path into trace (4200 bytes). */
static void run_holders(const char *mode, char *trace)
{
    char *dir = th_tmpdir(), libpath[4400];
    snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s:%s", VSP_FAKES, CUBLAS_DIR);
    const char *argv[] = {VSP_PROGS "/prog_holders", mode, NULL};
    const char *env[] = {libpath, NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "segments 0x1 0x1 0x1 handle 0x1 pool 0x1"), "%s", r.out);
    snprintf(trace, 4200, "%s/t.trace", dir);
}

/* The JSON report of trace by the report binary at exe, with opts; asserts it ran without a word
 * on stderr (the shipped rules are there: the file beside the build tree's binary, else built in). */
static json_t *report_json_by(const char *exe, const char *trace, const char *opts, int *code)
{
    char cmd[13000];
    struct run_result r;
    snprintf(cmd, sizeof cmd, "cd '%s' && exec '%s' --format json %s '%s'", VSP_SOURCE_DIR, exe, opts ? opts : "",
             trace);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert(r.exited && (r.code == 0 || r.code == 1), "%s", r.err);
    cr_assert_str_eq(r.err, "", "no warning: %s", r.err);
    if (code)
        *code = r.code;
    return th_json(r.out);
}

static json_t *report_json(const char *trace, const char *opts, int *code)
{
    return report_json_by(REPORT, trace, opts, code);
}

/* vramspy-report copied alone into <dir>/alone/bin: no holders.json beside it, no share/ above it,
 * as a hand copy or a bundle that forgot the file leaves it. Its path into exe (4400 bytes). */
static void report_alone(const char *dir, char *exe)
{
    char cmd[13000];
    snprintf(exe, 4400, "%s/alone/bin/vramspy-report", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/alone/bin' && cp '%s' '%s'", dir, REPORT, exe);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
}

/* The directory run_holders traced into (the trace's), for what a test puts beside the trace. */
static void dir_of(const char *trace, char *dir)
{
    snprintf(dir, 4200, "%s", trace);
    *strrchr(dir, '/') = 0;
}

Test(holders, framework_held_memory_is_cached_and_the_one_real_leak_stays_a_leak)
{
    char trace[4200];
    run_holders("leak", trace);
    int code;
    json_t *j = report_json(trace, "--fail-on leak", &code);
    cr_assert_eq(count_kind(j, "leak"), 1, "one leak: make_buffer's");
    size_t i;
    json_t *f;
    json_array_foreach(findings(j), i, f) if (!strcmp(json_string_value(json_object_get(f, "kind")), "leak"))
        cr_assert_str_eq(innermost_function(f), "make_buffer");
    cr_assert_eq(code, 1, "--fail-on leak fails on the real leak");
    json_int_t bytes, count;
    json_t *torch = held_by_sum(j, "PyTorch caching allocator", &bytes, &count);
    cr_assert_not_null(torch, "the caching allocator's segments are held");
    cr_assert_eq(bytes, (2 + 3 + 4) << 20);
    cr_assert_eq(count, 3);
    cr_assert_str_eq(json_string_value(json_object_get(torch, "memory")), "device");
    cr_assert_not_null(strstr(innermost_function(torch), "DeviceCachingAllocator::alloc_block"));
    json_t *blas = held_by(j, "cuBLAS handle");
    cr_assert_not_null(blas, "cublasCreate_v2's workspace is held");
    cr_assert_eq(json_integer_value(json_object_get(blas, "bytes")), 4 << 20);
    json_t *cupy = held_by(j, "CuPy memory pool");
    cr_assert_not_null(cupy, "CuPy's pool allocation is held");
    cr_assert_eq(json_integer_value(json_object_get(cupy, "bytes")), 1 << 20);
    json_decref(j);
}

Test(holders, without_the_real_leak_fail_on_leak_passes_and_fail_on_cached_fails)
{
    char trace[4200];
    run_holders("noleak", trace);
    int code;
    json_t *j = report_json(trace, "--fail-on leak", &code);
    cr_assert_eq(count_kind(j, "leak"), 0);
    cr_assert_not_null(held_by(j, "PyTorch caching allocator"));
    cr_assert_not_null(held_by(j, "cuBLAS handle"));
    cr_assert_not_null(held_by(j, "CuPy memory pool"));
    cr_assert_eq(code, 0, "held memory never fails --fail-on leak");
    json_decref(j);
    j = report_json(trace, "--fail-on cached", &code);
    cr_assert_eq(code, 1, "--fail-on cached exists");
    json_decref(j);
}

Test(holders, text_says_held_at_exit_by_the_holder_after_the_leaks)
{
    char trace[4200], args[4400];
    run_holders("leak", trace);
    struct run_result r;
    snprintf(args, sizeof args, "'%s'", trace);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    const char *held = strstr(r.out, "HELD AT EXIT 9.0 MiB in 3 device allocations by the PyTorch caching allocator");
    cr_assert_not_null(held, "%s", r.out);
    const char *leak = strstr(r.out, "LEAK 1.0 MiB in 1 device allocation by cudaMalloc");
    cr_assert_not_null(leak, "%s", r.out);
    cr_assert(leak < held, "held memory is listed after the leaks:\n%s", r.out);
    cr_assert_not_null(strstr(r.out, "by the cuBLAS handle"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "summary: 1 leak, "), "the summary counts them apart: %s", r.out);
    cr_assert_not_null(strstr(r.out, " cached;"), "the summary counts them apart: %s", r.out);
}

Test(holders, no_default_holders_reports_everything_live_as_leak)
{
    char trace[4200];
    run_holders("noleak", trace);
    json_t *j = report_json(trace, "--no-default-holders", NULL);
    cr_assert_eq(count_kind(j, "cached"), 0);
    cr_assert_geq(count_kind(j, "leak"), 3);
    json_decref(j);
}

Test(holders, a_report_copied_alone_still_holds_framework_memory_with_its_built_in_rules)
{
    char trace[4200], dir[4200], exe[4400];
    run_holders("leak", trace);
    dir_of(trace, dir);
    report_alone(dir, exe);
    int code;
    json_t *j = report_json_by(exe, trace, "--fail-on leak", &code);
    cr_assert_eq(count_kind(j, "leak"), 1, "one leak, make_buffer's; the framework's memory is not a leak");
    cr_assert_eq(code, 1);
    json_int_t bytes;
    cr_assert_not_null(held_by_sum(j, "PyTorch caching allocator", &bytes, NULL),
                       "the built-in rules hold the caching allocator's segments");
    cr_assert_eq(bytes, (2 + 3 + 4) << 20);
    cr_assert_not_null(held_by(j, "cuBLAS handle"));
    cr_assert_not_null(held_by(j, "CuPy memory pool"));
    json_decref(j);
}

Test(holders, no_default_holders_drops_the_built_in_rules_too)
{
    char trace[4200], dir[4200], exe[4400];
    run_holders("noleak", trace);
    dir_of(trace, dir);
    report_alone(dir, exe);
    json_t *j = report_json_by(exe, trace, "--no-default-holders", NULL);
    cr_assert_eq(count_kind(j, "cached"), 0);
    cr_assert_geq(count_kind(j, "leak"), 3);
    json_decref(j);
}

Test(holders, an_installed_rules_file_replaces_the_built_in_rules)
{
    /* share/vramspy/holders.json above the binary (an install) and holders.json beside it (the
     * build tree), each alone: its rules and none of the built-in ones */
    static const char *const where[] = {"alone/share/vramspy", "alone/bin"};
    for (size_t w = 0; w < sizeof where / sizeof *where; w++) {
        char trace[4200], dir[4200], exe[4400], cmd[9000], rules[4500];
        run_holders("leak", trace);
        dir_of(trace, dir);
        report_alone(dir, exe);
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/%s'", dir, where[w]);
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        struct run_result r;
        th_run(&r, argv, NULL, 0, 1);
        cr_assert_eq(r.code, 0, "%s", r.err);
        snprintf(rules, sizeof rules, "%s/%s/holders.json", dir, where[w]);
        th_write_file(rules, "[{\"held_by\": \"the packager's torch\", \"function\": \"*alloc_block*\"}]");
        json_t *j = report_json_by(exe, trace, NULL, NULL);
        cr_assert_not_null(held_by(j, "the packager's torch"), "%s: the file's rule applies", where[w]);
        cr_assert_null(held_by(j, "PyTorch caching allocator"), "%s: the built-in rules do not", where[w]);
        cr_assert_null(held_by(j, "cuBLAS handle"), "%s: the built-in rules do not", where[w]);
        json_decref(j);
    }
}

Test(holders, a_bad_installed_rules_file_is_a_usage_error_naming_the_rule_and_field)
{
    char *dir = th_tmpdir(), exe[4400], rules[4500], args[14000];
    report_alone(dir, exe);
    snprintf(rules, sizeof rules, "%s/alone/bin/holders.json", dir);
    th_write_file(rules, "[{\"held_by\": \"x\", \"function\": \"f\"}, {\"held_by\": \"y\", \"functoin\": \"g\"}]");
    struct run_result r;
    snprintf(args, sizeof args, "exec '%s' --check-options", exe);
    const char *argv[] = {"/bin/sh", "-c", args, NULL};
    th_run(&r, argv, NULL, 0, 1);
    cr_assert_eq(r.code, 2, "not the built-in rules instead: %s", r.err);
    cr_assert_not_null(strstr(r.err, "rule 1: unknown field \"functoin\""), "%s", r.err);
    cr_assert_not_null(strstr(r.err, rules), "names the file: %s", r.err);
    snprintf(args, sizeof args, "exec '%s' --check-options --no-default-holders", exe);
    th_run(&r, argv, NULL, 0, 1);
    cr_assert_eq(r.code, 0, "--no-default-holders does not read it: %s", r.err);
    /* one that cannot be read (a directory: the tests may run as root, for whom no mode denies) */
    snprintf(args, sizeof args, "rm '%s' && mkdir '%s' && exec '%s' --check-options", rules, rules, exe);
    th_run(&r, argv, NULL, 0, 1);
    cr_assert_eq(r.code, 2, "not the built-in rules instead: %s", r.err);
    cr_assert_not_null(strstr(r.err, "cannot open"), "%s", r.err);
}

Test(holders, a_user_rules_file_adds_holders_tried_first)
{
    char trace[4200], rules[4400], opts[4500];
    run_holders("leak", trace);
    snprintf(rules, sizeof rules, "%s/my-holders.json", th_tmpdir());
    th_write_file(rules, "[{\"held_by\": \"our buffer cache\", \"function\": \"make_buffer\", \"source\": \"ours\"},"
                         " {\"held_by\": \"our torch\", \"module\": \"prog_holders\", \"function\": \"*alloc_block*\"}]");
    snprintf(opts, sizeof opts, "--holders '%s'", rules);
    json_t *j = report_json(trace, opts, NULL);
    cr_assert_eq(count_kind(j, "leak"), 0);
    cr_assert_not_null(held_by(j, "our buffer cache"));
    cr_assert_not_null(held_by(j, "our torch"), "the user's rule is tried before the shipped one");
    cr_assert_null(held_by(j, "PyTorch caching allocator"));
    cr_assert_not_null(held_by(j, "cuBLAS handle"), "the shipped rules still apply");
    json_decref(j);
}

Test(holders, an_incomplete_trace_keeps_its_leaks)
{
    char trace[4200], opts[64];
    run_holders("noleak", trace);
    json_t *j = report_json(trace, NULL, NULL);
    json_int_t pid = json_integer_value(json_object_get(json_object_get(j, "process"), "pid"));
    json_decref(j);
    snprintf(opts, sizeof opts, "--signal %lld=9", (long long)pid);
    j = report_json(trace, opts, NULL);
    cr_assert_eq(count_kind(j, "cached"), 0, "a killed process's live memory keeps today's meaning");
    cr_assert_geq(count_kind(j, "leak"), 3);
    json_decref(j);
}

Test(holders, a_bad_rules_file_is_a_usage_error_naming_the_field)
{
    char *dir = th_tmpdir(), bad[4300], args[4500];
    static const struct {
        const char *text, *says;
    } cases[] = {
        {"[{\"held_by\": \"x\", \"functoin\": \"f\"}]", "unknown field \"functoin\""},
        {"[{\"function\": \"f\"}]", "\"held_by\" is missing"},
        {"[{\"held_by\": \"x\"}]", "needs \"function\", \"module\" or \"file\""},
        {"[{\"held_by\": 3, \"function\": \"f\"}]", "\"held_by\" must be a non-empty string"},
        {"{\"held_by\": \"x\"}", "JSON list"},
        {"[{\"held_by\": \"x\",", "line 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(bad, sizeof bad, "%s/bad%zu.json", dir, i);
        th_write_file(bad, cases[i].text);
        snprintf(args, sizeof args, "--check-options --holders '%s'", bad);
        struct run_result r;
        th_report(&r, args);
        cr_assert_eq(r.code, 2, "%s: %s", cases[i].text, r.err);
        cr_assert_not_null(strstr(r.err, cases[i].says), "%s: %s", cases[i].text, r.err);
        cr_assert_not_null(strstr(r.err, "--holders"), "%s", r.err);
    }
    snprintf(args, sizeof args, "--check-options --holders '%s/missing.json'", dir);
    struct run_result r;
    th_report(&r, args);
    cr_assert_eq(r.code, 2);
    cr_assert_not_null(strstr(r.err, "cannot open"), "%s", r.err);
}

Test(holders, a_bad_rules_file_under_vramspy_run_does_not_start_the_program)
{
    TH_SKIP_UNDER("tsan", "the front end's shell pipeline cannot start with the ThreadSanitizer runtime");
    char *dir = th_tmpdir(), bad[4300], marker[4300], cmd[9500];
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    th_write_file(bad, "[{\"held_by\": \"x\", \"modul\": \"libfoo.so\"}]");
    snprintf(marker, sizeof marker, "%s/marker", dir);
    snprintf(cmd, sizeof cmd, "'%s/vramspy' run --out '%s/traces' --holders '%s' -- /bin/sh -c 'touch %s'",
             VSP_BUILD_DIR, dir, bad, marker);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct run_result r;
    th_run(&r, argv, NULL, 2, 0);
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_neq(access(marker, F_OK), 0, "the program was not started");
    cr_assert_not_null(strstr(r.err, "unknown field \"modul\""), "%s", r.err);
}

Test(holders, shipped_rules_name_their_source_and_cover_the_real_frame_names)
{
    /* the frame names of the H200 run (the JSON reports under shared/gpu-2026-12-04/reports), each with the holder
     * the shipped list must give it; matched with Python's fnmatchcase (fnmatch(3) semantics for
     * *, ? and [...] without FNM_PATHNAME, as the report matches) */
    char script[] =
        "import json, fnmatch, sys\n"
        "rules = json.load(open(sys.argv[1]))\n"
        "for r in rules:\n"
        "    assert r.get('held_by') and r.get('source'), r\n"
        "    assert any(k in r for k in ('function', 'module', 'file')), r\n"
        "want = [\n"
        " ('c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator::alloc_block(c10::cuda::CUDACachingAllocator::Native::(anonymous namespace)::AllocParams&, bool, std::shared_ptr<c10::GatheredContext> const&, std::unique_lock<std::recursive_mutex>&)', 'libc10_cuda.so', 'PyTorch caching allocator'),\n"
        " ('c10::cuda::CUDACachingAllocator::Native::(anonymous namespace)::ExpandableSegment::map(c10::cuda::CUDACachingAllocator::Native::(anonymous namespace)::SegmentRange)', 'libc10_cuda.so', 'PyTorch caching allocator'),\n"
        " ('c10::cuda::CUDACachingAllocator::CudaMallocAsync::(anonymous namespace)::mallocAsync(void**, signed char, unsigned long, CUstream_st*)', 'libc10_cuda.so', 'PyTorch caching allocator (cudaMallocAsync backend)'),\n"
        " ('at::cuda::(anonymous namespace)::CUDACachingHostAllocatorImpl::allocate_host_memory_slowpath(unsigned long, void**)', 'libtorch_cuda.so', 'PyTorch pinned host caching allocator'),\n"
        " ('cublasCreate_v2', 'libcublas.so.13', 'cuBLAS handle'),\n"
        " ('cudnnCreate', 'libcudnn_graph.so.9', 'cuDNN handle'),\n"
        " ('__pyx_pf_4cupy_4cuda_6memory_6Memory___init__', 'memory.cpython-312-x86_64-linux-gnu.so', 'CuPy memory pool'),\n"
        " ('__pyx_pf_4cupy_4cuda_13pinned_memory_12PinnedMemory___init__', 'pinned_memory.cpython-312-x86_64-linux-gnu.so', 'CuPy pinned memory pool'),\n"
        " ('stream_executor::gpu::CudnnSupport::Init()', 'xla_cuda_plugin.so', 'JAX/XLA (StreamExecutor)'),\n"
        " ('tsl::BFCAllocator::Extend(unsigned long, unsigned long)', 'xla_cuda_plugin.so', 'JAX/XLA BFC allocator'),\n"
        " ('ncclCommInitRank', 'libnccl.so.2', 'NCCL communicator'),\n"
        " ('onnxruntime::BFCArena::Extend(unsigned long)', 'libonnxruntime_providers_cuda.so', 'ONNX Runtime BFC arena'),\n"
        " ('rmm::mr::pool_memory_resource<rmm::mr::cuda_memory_resource>::try_to_expand(unsigned long, unsigned long, rmm::cuda_stream_view)', 'librmm.so', 'RAPIDS RMM pool'),\n"
        " ('ggml_cuda_pool_leg::alloc(unsigned long, unsigned long*)', 'libggml-cuda.so', 'llama.cpp ggml CUDA pool'),\n"
        " ('ggml_backend_cuda_buffer_type_alloc_buffer', 'libggml-cuda.so', 'llama.cpp ggml CUDA buffer'),\n"
        " ('', 'libnvinfer.so.10', 'TensorRT'),\n"
        "]\n"
        "def holder(fn, mod):\n"
        "    for r in rules:\n"
        "        if 'function' in r and not fnmatch.fnmatchcase(fn, r['function']): continue\n"
        "        if 'module' in r and not fnmatch.fnmatchcase(mod, r['module']): continue\n"
        "        if 'file' in r: continue\n"
        "        return r['held_by']\n"
        "for fn, mod, by in want:\n"
        "    assert holder(fn, mod) == by, (fn, holder(fn, mod), by)\n"
        "for fn, mod in [('main', 'prog'), ('at::native::empty_cuda(c10::ArrayRef<long>)', 'libtorch_cuda.so'),\n"
        "                ('ffi_call', 'libffi.so.8'), ('_PyEval_EvalFrameDefault', 'python3.12'),\n"
        "                ('cudaMalloc', 'libcudart.so.13')]:\n"
        "    assert holder(fn, mod) is None, (fn, holder(fn, mod))\n"
        "print('ok', len(rules))\n";
    char path[4300];
    snprintf(path, sizeof path, "%s/check.py", th_tmpdir());
    th_write_file(path, script);
    const char *argv[] = {"/usr/bin/python3", path, VSP_SOURCE_DIR "/report/holders.json", NULL};
    if (access(argv[0], X_OK) != 0)
        cr_skip_test("no /usr/bin/python3 to read the shipped rules with");
    struct run_result r;
    th_run(&r, argv, NULL, 0, 1);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_not_null(strstr(r.out, "ok "), "%s", r.out);
}

/* ---- growth ---- */

static json_t *run_growth(const char *mode, const char *opts, int *code)
{
    char *dir = th_tmpdir(), trace[4300];
    const char *argv[] = {VSP_PROGS "/prog_growth", mode, NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    snprintf(trace, sizeof trace, "%s/t.trace", dir);
    return report_json(trace, opts, code);
}

Test(growth, a_site_keeping_1_mib_an_iteration_grows_though_all_is_freed_at_the_end)
{
    int code;
    json_t *j = run_growth("grow", "--fail-on growth,leak", &code);
    cr_assert_eq(count_kind(j, "leak"), 0, "all freed at the very end");
    cr_assert_eq(count_kind(j, "growth"), 1);
    cr_assert_eq(code, 1, "--fail-on growth fails");
    json_t *g = th_json_find(findings(j), "kind", "growth");
    cr_assert_str_eq(innermost_function(g), "grow_cache");
    cr_assert_str_eq(json_string_value(json_object_get(g, "api")), "cudaMalloc");
    json_int_t high = json_integer_value(json_object_get(g, "bytes_high"));
    json_int_t half = json_integer_value(json_object_get(g, "bytes_at_half"));
    cr_assert_eq(high, 200 << 20, "the high at the end: 200 MiB");
    cr_assert(half >= 60 << 20 && half <= 140 << 20, "about 100 MiB at half time: %lld", (long long)half);
    cr_assert(json_real_value(json_object_get(g, "rate_bytes_per_s")) > 0);
    json_decref(j);
}

Test(growth, text_says_growth_over_the_second_half_at_the_site)
{
    char *dir = th_tmpdir(), args[4400];
    const char *argv[] = {VSP_PROGS "/prog_growth", "grow", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", NULL);
    snprintf(args, sizeof args, "'%s/t.trace'", dir);
    th_report(&r, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    const char *g = strstr(r.out, "GROWTH +");
    cr_assert_not_null(g, "%s", r.out);
    cr_assert_not_null(strstr(g, " over the second half ("), "%s", r.out);
    cr_assert_not_null(strstr(g, "/s) by cudaMalloc at grow_cache"), "%s", r.out);
}

Test(growth, vramspy_top_marks_the_growing_site)
{
    char *dir = th_tmpdir(), cmd[4400];
    const char *argv[] = {VSP_PROGS "/prog_growth", "growkeep", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    snprintf(cmd, sizeof cmd, "'%s/vramspy' top --once '%s/t.trace'", VSP_BUILD_DIR, dir);
    const char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    th_run(&r, sh, NULL, 0, 1);
    cr_assert_eq(r.code, 0, "%s", r.err);
    const char *line = strstr(r.out, "grow_cache");
    cr_assert_not_null(line, "%s", r.out);
    const char *eol = strchr(line, '\n');
    const char *mark = strstr(line, "GROWING +");
    cr_assert(mark && (!eol || mark < eol), "the growing site is marked on its line:\n%s", r.out);
}

/* One request served 1 MiB at a time until the device is full, then given back (the H200 run's
 * false growth: PyTorch's expandable segments mapping a 400 GiB request in 20 MiB chunks): an
 * out-of-memory, not growth. */
Test(growth, a_request_served_piece_by_piece_until_out_of_memory_is_not_growth)
{
    int code;
    json_t *j = run_growth("spill", "", &code);
    cr_assert_eq(count_kind(j, "oom"), 1, "the piece larger than the device is out of memory");
    cr_assert_eq(count_kind(j, "growth"), 0, "the pieces were given back after the failure");
    json_decref(j);
}

Test(growth, a_steady_loop_does_not_grow)
{
    json_t *j = run_growth("steady", NULL, NULL);
    cr_assert_eq(count_kind(j, "growth"), 0);
    json_decref(j);
}

Test(growth, a_warm_up_in_the_first_percent_does_not_grow)
{
    json_t *j = run_growth("warmup", "--growth-min 1MiB", NULL);
    cr_assert_eq(count_kind(j, "growth"), 0, "100 MiB taken at the start and kept flat is no growth");
    json_decref(j);
}

Test(growth, growth_min_raises_the_bar)
{
    json_t *j = run_growth("grow", "--growth-min 1GiB", NULL);
    cr_assert_eq(count_kind(j, "growth"), 0, "a rise of 100 MiB is below 1 GiB");
    json_decref(j);
}

/* ---- pools in coverage ---- */

static void pool_coverage_case(int nvml, int teardown)
{
    char *dir = th_tmpdir(), libpath[4400], trace[4300], args[4400];
    snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s:%s/nvml", VSP_FAKES, VSP_FAKES);
    const char *env[] = {nvml ? libpath : "VSP_FAKE_NVML=0", teardown ? "VSP_FAKE_TEARDOWN_AT_EXIT=1" : NULL, NULL};
    const char *argv[] = {VSP_PROGS "/prog_pool_cache", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    snprintf(trace, sizeof trace, "%s/t.trace", dir);
    json_t *j = report_json(trace, "--untracked-min 1", NULL);
    json_t *cv = json_object_get(j, "coverage");
    cr_assert_not_null(cv);
    cr_assert_str_eq(json_string_value(json_object_get(cv, "source")), nvml ? "nvml" : "device");
    cr_assert_eq(json_integer_value(json_object_get(cv, "pool_cached_bytes")), 144 << 20,
                 "what the pool reserves beyond what it hands out, sampled at exit: %s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(cv, "untracked_bytes")), 0);
    cr_assert_eq(count_kind(j, "untracked"), 0);
    cr_assert(json_array_size(json_object_get(j, "pools")) >= 1, "the pool is listed");
    json_decref(j);
    snprintf(args, sizeof args, "'%s'", trace);
    th_report(&r, args);
    cr_assert_not_null(strstr(r.out, " + 144.0 MiB cached by stream-ordered pools + 0 B untracked"), "%s", r.out);
}

Test(pool_coverage, pool_cache_is_its_own_part_device_wide) { pool_coverage_case(0, 0); }
Test(pool_coverage, pool_cache_is_its_own_part_through_nvml) { pool_coverage_case(1, 0); }
Test(pool_coverage, sampled_at_exit_before_the_runtime_tears_down_device_wide) { pool_coverage_case(0, 1); }
Test(pool_coverage, sampled_at_exit_before_the_runtime_tears_down_through_nvml) { pool_coverage_case(1, 1); }

Test(pool_coverage, a_python_process_samples_its_pools_at_exit_before_the_teardown)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("no /usr/bin/python3");
    char *dir = th_tmpdir(), script[4300], trace[4300];
    snprintf(script, sizeof script, "%s/pools.py", dir);
    th_write_file(script,
                  "import ctypes\n"
                  "rt = ctypes.CDLL('libcudart.so.13')\n"
                  "pool = ctypes.c_void_p()\n"
                  "assert rt.cudaDeviceGetDefaultMemPool(ctypes.byref(pool), 0) == 0\n"
                  "threshold = ctypes.c_uint64(1 << 30)\n"
                  "assert rt.cudaMemPoolSetAttribute(pool, 4, ctypes.byref(threshold)) == 0  # release threshold\n"
                  "ptrs = [ctypes.c_void_p() for _ in range(4)]\n"
                  "for p in ptrs:\n"
                  "    assert rt.cudaMallocAsync(ctypes.byref(p), ctypes.c_size_t(48 << 20), None) == 0\n"
                  "for p in ptrs:\n"
                  "    assert rt.cudaFreeAsync(p, None) == 0\n"
                  "kept = ctypes.c_void_p()\n"
                  "assert rt.cudaMallocAsync(ctypes.byref(kept), ctypes.c_size_t(48 << 20), None) == 0\n"
                  "print('pools ok')\n");
    const char *argv[] = {"/usr/bin/python3", script, NULL};
    const char *env[] = {"VSP_FAKE_TEARDOWN_AT_EXIT=1", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", env);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_assert_str_eq(r.out, "pools ok\n");
    snprintf(trace, sizeof trace, "%s/t.trace", dir);
    json_t *j = report_json(trace, NULL, NULL);
    json_t *cv = json_object_get(j, "coverage");
    cr_assert_not_null(cv);
    cr_assert_eq(json_integer_value(json_object_get(cv, "pool_cached_bytes")), 144 << 20);
    cr_assert_eq(json_integer_value(json_object_get(cv, "untracked_bytes")), 0);
    cr_assert_not_null(json_object_get(j, "pools"), "POOL records written at the Python process's exit");
    json_decref(j);
}

Test(holders, the_job_view_merges_held_memory_by_holder_and_names_it)
{
    char t1[4200], t2[4200], args[9000];
    run_holders("leak", t1);
    run_holders("leak", t2);
    struct run_result r;
    snprintf(args, sizeof args, "--job --fail-on leak '%s' '%s'", t1, t2);
    th_report(&r, args);
    cr_assert_eq(r.code, 1, "the real leak fails the job: %s", r.err);
    const char *line = strstr(r.out, "cached 18.0 MiB in 6 calls by cudaMalloc, held until exit by the PyTorch caching allocator");
    cr_assert_not_null(line, "%s", r.out);
    cr_assert_not_null(strstr(line, "in 2 of 2 processes"), "%s", r.out);
    snprintf(args, sizeof args, "--job --format json '%s' '%s'", t1, t2);
    th_report(&r, args);
    json_t *j = th_json(r.out);
    size_t i, held = 0;
    json_t *f;
    json_array_foreach(json_object_get(j, "findings"), i, f)
        held += !strcmp(json_string_value(json_object_get(f, "kind")), "cached") &&
                json_is_string(json_object_get(f, "held_by"));
    cr_assert_eq(held, 3, "one merged finding per holder's call site: %s", r.out);
    json_decref(j);
}
