/* Tests of --plan (issue 14): a worker on the fake runtime labels weights, KV cache and activations
 * through the label API and allocates known sizes (tests/progs/prog_plan.c: 32 + 12 + 3 MiB
 * labelled, 1 MiB not, a 48 MiB peak); plans in both forms — explicit sizes, and a Hugging Face
 * config with run parameters, whose weights and KV cache are checked against hand-computed values
 * of the planners' formulas; deviations inside and outside tolerance; exit codes with --fail-on
 * plan; headroom risk; a process on two devices compared per device (a synthetic trace); bad plans
 * refused naming the field, before vramspy run starts anything. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"
#define VRAMSPY VSP_BUILD_DIR "/vramspy"
#define MiB (1024ll * 1024ll)
#define GiB (1024ll * MiB)

static void sh(struct run_result *r, const char *fmt, const char *a, const char *b, const char *c)
{
    TH_SKIP_UNDER("tsan", "the report runs through /bin/sh here, which cannot start with the "
                          "ThreadSanitizer runtime preloaded; these run in the plain, ASan and UBSan builds");
    char cmd[16384];
    snprintf(cmd, sizeof cmd, fmt, a, b, c);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 0), 0);
}

/* One worker's trace in dir (label-activations or not); its path into path, and the path of a plan
 * beside it (dir/plan.json, not written yet) into plan (4200 bytes). */
static void worker(const char *dir, int label_activations, char *path, char *plan)
{
    char out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/w.%%p.trace", dir);
    const char *env[] = {out, "VRAMSPY_SUMMARY=0", NULL};
    const char *argv[] = {VSP_PROGS "/prog_plan", label_activations ? "label-activations" : "plain", NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, env, 1, 0), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char paths[2][4096];
    cr_assert_eq(th_list_traces(dir, paths, 2), 1);
    snprintf(path, 4096, "%s", paths[0]);
    snprintf(plan, 4200, "%s/plan.json", dir);
}

static json_t *report_json(struct run_result *r, const char *plan_path, const char *trace, const char *extra)
{
    TH_SKIP_UNDER("tsan", "the report runs through /bin/sh here, which cannot start with the "
                          "ThreadSanitizer runtime preloaded; these run in the plain, ASan and UBSan builds");
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "exec '%s' --format json --plan '%s' %s '%s'", REPORT, plan_path, extra, trace);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 1), 0);
    if (r->code == 2)
        return NULL;
    return th_json(r->out);
}

/* The row of a purpose in a plan object. */
static json_t *plan_row(json_t *plan, const char *purpose)
{
    return th_json_find(json_object_get(plan, "purposes"), "purpose", purpose);
}

static json_t *row(json_t *rep, const char *purpose) { return plan_row(json_object_get(rep, "plan"), purpose); }

static long long ival(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "%s is not an integer", k);
    return json_integer_value(v);
}

static size_t count_kind(json_t *rep, const char *kind)
{
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(json_object_get(rep, "findings"), i, f) n += !strcmp(json_string_value(json_object_get(f, "kind")), kind);
    return n;
}

Test(plan, explicit_sizes_are_measured_by_label_at_the_device_peak)
{
    char *dir = th_tmpdir(), trace[4096], plan[4200];
    worker(dir, 1, trace, plan);
    th_write_file(plan, "{\"weights\": \"32MiB\", \"kv_cache\": 12582912, \"activations\": \"3 MiB\", "
                        "\"overhead\": \"1MiB\"}");
    struct run_result r;
    json_t *j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *p = json_object_get(j, "plan");
    cr_assert_not_null(p);
    cr_assert_eq(json_array_size(json_object_get(p, "purposes")), 5);
    cr_assert_eq(ival(p, "device"), 0);
    const char *names[] = {"weights", "kv_cache", "activations", "overhead", "total"};
    long long want[] = {32 * MiB, 12 * MiB, 3 * MiB, 1 * MiB, 48 * MiB};
    double tol[] = {0.02, 0.15, 0.30, 0.40, 0.10};
    for (int k = 0; k < 5; k++) {
        json_t *o = json_array_get(json_object_get(p, "purposes"), (size_t)k);
        cr_assert_str_eq(json_string_value(json_object_get(o, "purpose")), names[k]);
        cr_assert_eq(ival(o, "planned_bytes"), want[k], "%s", names[k]);
        cr_assert_eq(ival(o, "measured_bytes"), want[k], "%s", names[k]);
        cr_assert_float_eq(json_real_value(json_object_get(o, "deviation")), 0.0, 1e-9);
        cr_assert_float_eq(json_real_value(json_object_get(o, "tolerance")), tol[k], 1e-9);
        cr_assert(json_is_true(json_object_get(o, "ok")), "%s", names[k]);
    }
    /* headroom from the device memory the trace recorded (the fake device: 1 GiB) */
    long long dev = ival(p, "device_memory_bytes");
    cr_assert_gt(dev, 0);
    cr_assert_eq(ival(p, "headroom_bytes"), llround((double)dev * 0.9 - 48.0 * MiB));
    cr_assert_str_eq(json_string_value(json_object_get(p, "risk")), ival(p, "headroom_bytes") >= 2 * GiB ? "LOW" : "MEDIUM");
    cr_assert_eq(count_kind(j, "plan"), 0);
    json_decref(j);
}

Test(plan, deviation_outside_tolerance_is_a_plan_finding_and_fails_with_fail_on_plan)
{
    char *dir = th_tmpdir(), trace[4096], plan[4200];
    worker(dir, 1, trace, plan);
    /* weights +3.2% (tolerance 2%): outside; KV cache +9.1% (15%): inside */
    th_write_file(plan, "{\"weights\": \"31MiB\", \"kv_cache\": \"11MiB\"}");
    struct run_result r;
    json_t *j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert(json_is_false(json_object_get(row(j, "weights"), "ok")));
    cr_assert_float_eq(json_real_value(json_object_get(row(j, "weights"), "deviation")), 1.0 / 31.0, 1e-9);
    cr_assert(json_is_true(json_object_get(row(j, "kv_cache"), "ok")));
    cr_assert_float_eq(json_real_value(json_object_get(row(j, "kv_cache"), "deviation")), 1.0 / 11.0, 1e-9);
    cr_assert_eq(count_kind(j, "plan"), 2, "weights, and the total (42 MiB planned, 48 measured)");
    json_t *f = json_array_get(json_object_get(j, "findings"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(f, "purpose")), "weights");
    cr_assert_eq(ival(f, "planned_bytes"), 31 * MiB);
    cr_assert_eq(ival(f, "measured_bytes"), 32 * MiB);
    json_decref(j);
    /* other kinds do not fail on it */
    j = report_json(&r, plan, trace, "--fail-on leak");
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_decref(j);
    j = report_json(&r, plan, trace, "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_decref(j);
    /* wider tolerances bring both inside */
    th_write_file(plan, "{\"weights\": \"31MiB\", \"kv_cache\": \"11MiB\", \"tolerances\": {\"weights\": 0.05, "
                        "\"total\": 0.2}}");
    j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_float_eq(json_real_value(json_object_get(row(j, "weights"), "tolerance")), 0.05, 1e-9);
    cr_assert_eq(count_kind(j, "plan"), 0);
    json_decref(j);
    /* a plan of one purpose has no total to judge */
    th_write_file(plan, "{\"weights\": \"32MiB\"}");
    j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(row(j, "weights"));
    cr_assert_null(row(j, "total"));
    json_decref(j);
    /* the text report: the table and its verdicts */
    th_write_file(plan, "{\"weights\": \"31MiB\", \"kv_cache\": \"11MiB\"}");
    sh(&r, "exec '%s' --fail-on plan --plan '%s' '%s'", REPORT, plan, trace);
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "plan, at the device peak of device 0:"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "OUTSIDE"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "PLAN"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "risk MEDIUM"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "exit status 1 (--fail-on plan)"), "%s", r.out);
}

Test(plan, unlabelled_activations_are_the_unlabelled_bytes_and_overhead_is_not_measured)
{
    char *dir = th_tmpdir(), trace[4096], plan[4200];
    worker(dir, 0, trace, plan);
    th_write_file(plan, "{\"weights\": \"32MiB\", \"kv_cache\": \"12MiB\", \"activations\": \"4MiB\", \"overhead\": \"2MiB\"}");
    struct run_result r;
    json_t *j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 0, "an unmeasured overhead is not judged: %s", r.err);
    cr_assert_eq(ival(row(j, "activations"), "measured_bytes"), 4 * MiB);
    cr_assert(json_is_null(json_object_get(row(j, "overhead"), "measured_bytes")));
    cr_assert(json_is_null(json_object_get(row(j, "overhead"), "deviation")));
    cr_assert(json_is_false(json_object_get(json_object_get(j, "plan"), "activations_labelled")));
    json_decref(j);
}

Test(plan, headroom_below_zero_is_high_risk_and_a_plan_finding)
{
    char *dir = th_tmpdir(), trace[4096], plan[4200];
    worker(dir, 1, trace, plan);
    /* 40 MiB x 0.9 usable, 48 MiB used */
    th_write_file(plan, "{\"weights\": \"32MiB\", \"kv_cache\": \"12MiB\", \"device_memory\": \"40MiB\"}");
    struct run_result r;
    json_t *j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 1, "%s", r.err);
    json_t *p = json_object_get(j, "plan");
    cr_assert_str_eq(json_string_value(json_object_get(p, "risk")), "HIGH");
    cr_assert_eq(ival(p, "headroom_bytes"), llround(40.0 * MiB * 0.9 - 48.0 * MiB));
    json_t *f = json_array_get(json_object_get(j, "findings"), json_array_size(json_object_get(j, "findings")) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(f, "purpose")), "headroom");
    cr_assert_str_eq(json_string_value(json_object_get(f, "risk")), "HIGH");
    json_decref(j);
    /* 2 GiB and more: LOW */
    th_write_file(plan, "{\"weights\": \"32MiB\", \"kv_cache\": \"12MiB\", \"device_memory\": \"80GiB\", "
                        "\"utilization\": 0.5}");
    j = report_json(&r, plan, trace, "--fail-on plan");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "plan"), "risk")), "LOW");
    cr_assert_eq(ival(json_object_get(j, "plan"), "headroom_bytes"), 40 * GiB - 48 * MiB);
    json_decref(j);
}

/* A Llama-style config: V 1024, H 256, L 4, 8 heads of 32, 2 KV heads, intermediate 512, FP16.
 * Parameters by hand: embeddings and head 2 x 1024 x 256 = 524,288; per layer q,o 2 x 256 x 8 x 32 =
 * 131,072, k,v 2 x 256 x 2 x 32 = 32,768, MLP 3 x 256 x 512 = 393,216, norms 512: 557,568; x 4 =
 * 2,230,272; total 2,754,560. */
#define CONFIG "{\"num_hidden_layers\": 4, \"hidden_size\": 256, \"num_attention_heads\": 8, " \
               "\"num_key_value_heads\": 2, \"intermediate_size\": 512, \"vocab_size\": 1024, "  \
               "\"torch_dtype\": \"float16\", \"tie_word_embeddings\": false}"

Test(plan, hugging_face_config_gives_weights_and_kv_cache_by_the_planners_formulas)
{
    char *dir = th_tmpdir(), trace[4096], plan[4200], cfg[4200];
    worker(dir, 1, trace, plan);
    /* inline config, defaults: FP16 weights 2,754,560 x 2 = 5,509,120; KV cache 2 x 4 layers x 2
     * heads x 32 x 4096 tokens x 1 sequence x 2 bytes x 1.15 = 4,823,449.6; overhead 1 GiB (the
     * 1 GiB device's 2% is less) */
    th_write_file(plan, "{\"model\": " CONFIG ", \"context_length\": 4096}");
    struct run_result r;
    json_t *j = report_json(&r, plan, trace, "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(ival(row(j, "weights"), "planned_bytes"), 5509120);
    cr_assert_eq(ival(row(j, "kv_cache"), "planned_bytes"), 4823450);
    cr_assert_eq(ival(row(j, "overhead"), "planned_bytes"), GiB);
    cr_assert_null(row(j, "activations"), "the model form plans no activations");
    cr_assert_eq(ival(row(j, "total"), "planned_bytes"), 5509120 + 4823450 + GiB);
    json_decref(j);
    /* the config as a file beside the plan, with run parameters: INT8 weights over 2 devices =
     * 1,377,280; FP8 KV cache, 4 sequences, no fragmentation, over 2 = 512 x 4096 x 4 x 1 / 2 =
     * 4 MiB; overhead 2% of 80 GiB + 0.25 GiB x 1 = 1,986,422,374.4 */
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    th_write_file(cfg, CONFIG);
    th_write_file(plan, "{\"model\": \"config.json\", \"context_length\": 4096, \"concurrency\": 4, "
                        "\"quantization\": \"int8\", \"kv_dtype\": \"fp8\", \"tensor_parallel_size\": 2, "
                        "\"fragmentation_factor\": 1.0, \"utilization\": 0.95, \"device_memory\": \"80GiB\", "
                        "\"tolerances\": {\"kv_cache\": 0.2}}");
    j = report_json(&r, plan, trace, "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(ival(row(j, "weights"), "planned_bytes"), 1377280);
    cr_assert_eq(ival(row(j, "kv_cache"), "planned_bytes"), 4 * MiB);
    cr_assert_float_eq(json_real_value(json_object_get(row(j, "kv_cache"), "tolerance")), 0.2, 1e-9);
    cr_assert_eq(ival(row(j, "overhead"), "planned_bytes"), 1986422374);
    json_t *p = json_object_get(j, "plan");
    cr_assert_float_eq(json_real_value(json_object_get(p, "utilization")), 0.95, 1e-9);
    /* headroom: 80 GiB x 0.95 less the larger of planned (1,377,280 + 4 MiB + overhead) and measured */
    long long planned = 1377280 + 4 * MiB + 1986422374;
    cr_assert_eq(ival(p, "headroom_bytes"), llround(80.0 * GiB * 0.95 - (double)planned));
    json_decref(j);
    /* num_parameters overrides counting; 4-bit AWQ at 0.55 bytes a parameter; tied embeddings */
    th_write_file(plan, "{\"model\": " CONFIG ", \"context_length\": 128, \"num_parameters\": \"7B\", "
                        "\"quantization\": \"awq\"}");
    j = report_json(&r, plan, trace, "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(ival(row(j, "weights"), "planned_bytes"), 3850000000ll);
    json_decref(j);
    th_write_file(plan, "{\"model\": {\"num_hidden_layers\": 4, \"hidden_size\": 256, \"num_attention_heads\": 8, "
                        "\"intermediate_size\": 512, \"vocab_size\": 1024, \"tie_word_embeddings\": true}, "
                        "\"context_length\": 10}");
    j = report_json(&r, plan, trace, "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    /* no KV heads: as many as heads (8), q,o,k,v all 131,072 a layer; one embedding; BF16 */
    long long params = 1024 * 256 + 4 * (131072 + 131072 + 393216 + 512);
    cr_assert_eq(ival(row(j, "weights"), "planned_bytes"), params * 2);
    cr_assert_eq(ival(row(j, "kv_cache"), "planned_bytes"), (long long)(2.0 * 4 * 8 * 32 * 10 * 2 * 1.15 + 0.5));
    json_decref(j);
}

Test(plan, bad_plans_are_refused_naming_the_field)
{
    char *dir = th_tmpdir(), trace[4096], plan[4200];
    worker(dir, 1, trace, plan);
    static const char *const cases[][2] = {
        {"[1, 2]", "not a JSON object"},
        {"{\"weights\": ", "line"},
        {"{}", "\"weights\": missing"},
        {"{\"weights\": \"12 parsecs\"}", "field \"weights\": not a size"},
        {"{\"wieghts\": \"1GiB\"}", "field \"wieghts\": unknown"},
        {"{\"weights\": 1, \"tolerances\": {\"kv_cache\": -1}}", "field \"tolerances.kv_cache\""},
        {"{\"weights\": 1, \"tolerances\": {\"weight\": 0.1}}", "field \"tolerances.weight\": unknown purpose"},
        {"{\"weights\": 1, \"utilization\": 1.5}", "field \"utilization\""},
        {"{\"weights\": 1, \"context_length\": 4096}", "field \"context_length\": a run parameter"},
        {"{\"model\": " CONFIG "}", "field \"context_length\": missing"},
        {"{\"model\": " CONFIG ", \"context_length\": 0}", "field \"context_length\": 0 is out of range"},
        {"{\"model\": " CONFIG ", \"context_length\": 8, \"quantization\": \"int3\"}", "field \"quantization\""},
        {"{\"model\": " CONFIG ", \"context_length\": 8, \"kv_dtype\": \"awq\"}", "field \"kv_dtype\""},
        {"{\"model\": " CONFIG ", \"context_length\": 8, \"tensor_parallel_size\": 0}",
         "field \"tensor_parallel_size\""},
        {"{\"model\": " CONFIG ", \"context_length\": 8, \"fragmentation_factor\": \"x\"}",
         "field \"fragmentation_factor\": not a number"},
        {"{\"model\": {\"num_hidden_layers\": 2}, \"context_length\": 8}", "field \"model.hidden_size\": missing"},
        {"{\"model\": {\"num_hidden_layers\": \"two\"}, \"context_length\": 8}", "field \"model.num_hidden_layers\""},
        {"{\"model\": \"no-such-config.json\", \"context_length\": 8}", "field \"model\""},
        {"{\"model\": 3, \"context_length\": 8}", "field \"model\": not a Hugging Face config"},
    };
    struct run_result r;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        th_write_file(plan, cases[i][0]);
        sh(&r, "exec '%s' --plan '%s' '%s'", REPORT, plan, trace);
        cr_assert_eq(r.code, 2, "[%s] %s", cases[i][0], r.err);
        cr_assert_not_null(strstr(r.err, cases[i][1]), "[%s] wants '%s': %s", cases[i][0], cases[i][1], r.err);
        cr_assert_not_null(strstr(r.err, "--plan"), "%s", r.err);
        cr_assert_str_eq(r.out, "");
        sh(&r, "exec '%s' --check-options --plan '%s' %s", REPORT, plan, "");
        cr_assert_eq(r.code, 2, "--check-options [%s] %s", cases[i][0], r.err);
    }
    sh(&r, "exec '%s' --plan '%s/none.json' '%s'", REPORT, dir, trace);
    cr_assert_eq(r.code, 2, "%s", r.err);
    sh(&r, "exec '%s' --format folded --plan '%s' '%s'", REPORT, plan, trace);
    cr_assert_eq(r.code, 2, "%s", r.err);
}

Test(plan, vramspy_run_checks_the_plan_before_the_start_and_gates_on_it)
{
    char *dir = th_tmpdir(), plan[4200], marker[4200], out[4200];
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    snprintf(marker, sizeof marker, "%s/started", dir);
    th_write_file(plan, "{\"weights\": \"32MiB\", \"kv_cache\": \"twelve\"}");
    struct run_result r;
    sh(&r, "exec '%s' run --plan '%s' -- /bin/sh -c 'touch %s'", VRAMSPY, plan, marker);
    cr_assert_eq(r.code, 2, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "field \"kv_cache\""), "%s", r.err);
    cr_assert_eq(access(marker, F_OK), -1, "the program was started");
    /* a plan the run misses: --fail-on plan, --error-exitcode */
    th_write_file(plan, "{\"weights\": \"16MiB\"}");
    snprintf(out, sizeof out, "%s/traces", dir);
    sh(&r, "exec '%s' run --out '%s' --fail-on plan --error-exitcode 9 --plan '%s' -- " VSP_PROGS
           "/prog_plan label-activations", VRAMSPY, out, plan);
    cr_assert_eq(r.code, 9, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "OUTSIDE"), "%s", r.err);
    th_write_file(plan, "{\"weights\": \"32MiB\", \"kv_cache\": \"12MiB\", \"activations\": \"3MiB\"}");
    sh(&r, "exec '%s' run --out '%s' --fail-on plan --error-exitcode 9 --plan '%s' -- " VSP_PROGS
           "/prog_plan label-activations", VRAMSPY, out, plan);
    cr_assert_eq(r.code, 0, "%s", r.err);
}

/* ---- one process, two devices: a synthetic trace ---- */

static struct ring_fixture fx;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
    cr_assert_eq(ring_fixture_put(&fx, type, a, alen, b, blen), 0);
}

static void label(uint32_t id, const char *name)
{
    struct vsp_rec_label l = {.id = id, .name_len = (uint32_t)strlen(name) + 1};
    put(VSP_REC_LABEL, &l, sizeof l, name, strlen(name) + 1);
}

static uint64_t seq;

static void event(uint8_t op, int32_t device, uint64_t ptr, uint64_t size, uint32_t lab)
{
    struct vsp_rec_event e = {.time_ns = 1000 + seq, .ptr = ptr, .size = size, .tid = 1, .device = device,
                              .api = op == VSP_OP_ALLOC ? VSP_API_cudaMalloc : VSP_API_cudaFree, .op = op,
                              .memory = VSP_MEM_DEVICE, .eflags = lab << VSP_EVENT_LABEL_SHIFT, .seq = seq++,
                              .free_bytes = UINT64_MAX, .total_bytes = UINT64_MAX};
    put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
}

Test(plan, a_process_on_two_devices_is_compared_per_device)
{
    char *dir = th_tmpdir(), path[300], plan[300];
    snprintf(path, sizeof path, "%s/two.trace", dir);
    cr_assert_eq(ring_fixture_open(&fx, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    static const char exe[] = "/opt/bin/sharded";
    struct vsp_rec_process pr = {.pid = 77, .ppid = 1, .exe_len = sizeof exe};
    put(VSP_REC_PROCESS, &pr, sizeof pr, exe, sizeof exe);
    label(1, "weights");
    label(2, "kv_cache");
    seq = 0;
    /* device 0: 10 MiB weights, 4 MiB KV cache (its peak: 14 MiB), then the KV cache goes;
     * device 1: 10 MiB weights, 6 MiB KV cache, then 2 MiB unlabelled (its peak: 18 MiB) */
    event(VSP_OP_ALLOC, 0, 0x10000000, 10 * MiB, 1);
    event(VSP_OP_ALLOC, 0, 0x20000000, 4 * MiB, 2);
    event(VSP_OP_ALLOC, 1, 0x30000000, 10 * MiB, 1);
    event(VSP_OP_ALLOC, 1, 0x40000000, 6 * MiB, 2);
    event(VSP_OP_FREE, 0, 0x20000000, 0, 0);
    event(VSP_OP_ALLOC, 1, 0x50000000, 2 * MiB, 0);
    struct vsp_rec_end end = {0};
    put(VSP_REC_END, &end, sizeof end, NULL, 0);
    cr_assert_eq(ring_fixture_keep(&fx, path, 1), 0);
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    th_write_file(plan, "{\"weights\": \"10MiB\", \"kv_cache\": \"4MiB\", \"device_memory\": \"1GiB\"}");
    struct run_result r;
    json_t *j = report_json(&r, plan, path, "--fail-on plan");
    cr_assert_eq(r.code, 1, "%s", r.err);
    json_t *p = json_object_get(j, "plan"), *devs = json_object_get(p, "devices");
    cr_assert_eq(json_array_size(devs), 2);
    cr_assert_eq(ival(p, "device"), 1, "the process's plan is its fullest device's");
    json_t *d0 = json_array_get(devs, 0), *d1 = json_array_get(devs, 1);
    cr_assert_eq(ival(d0, "device"), 0);
    cr_assert_eq(ival(plan_row(d0, "kv_cache"), "measured_bytes"), 4 * MiB);
    cr_assert(json_is_true(json_object_get(plan_row(d0, "total"), "ok")));
    cr_assert_eq(ival(plan_row(d0, "total"), "measured_bytes"), 14 * MiB);
    cr_assert_eq(ival(d1, "device"), 1);
    cr_assert_eq(ival(plan_row(d1, "weights"), "measured_bytes"), 10 * MiB);
    cr_assert_eq(ival(plan_row(d1, "kv_cache"), "measured_bytes"), 6 * MiB);
    cr_assert_eq(ival(plan_row(d1, "total"), "measured_bytes"), 18 * MiB);
    /* device 1's KV cache (+50%) and total (+28.6%) are outside; device 0 is within */
    cr_assert_eq(count_kind(j, "plan"), 2);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "kind")), "plan"))
            cr_assert_eq(ival(f, "device"), 1);
    }
    json_decref(j);
    sh(&r, "exec '%s' --plan '%s' '%s'", REPORT, plan, path);
    cr_assert_not_null(strstr(r.out, "plan, at the device peak of device 0:"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "plan, at the device peak of device 1:"), "%s", r.out);
}
