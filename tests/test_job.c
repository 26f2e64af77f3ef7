/* Tests of --job (issue 14): a four-process run with ranks (tests/progs/prog_plan.c's launcher sets
 * RANK, LOCAL_RANK and WORLD_SIZE in each worker's environment, as torchrun does) merged into one
 * vramspy-job/1 document with a shared time axis — vramspy run's default when its run leaves several
 * traces —, its text summary per device and rank, one SVG and a JUnit suite per process; and
 * synthetic traces of two "hosts" (different host names, wall-clock anchors and monotonic clocks)
 * lined up on one axis. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"
#define VRAMSPY VSP_BUILD_DIR "/vramspy"

static void sh(struct run_result *r, const char *cmd)
{
    TH_SKIP_UNDER("tsan", "the report runs through /bin/sh here, which cannot start with the "
                          "ThreadSanitizer runtime preloaded; these run in the plain, ASan and UBSan builds");
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 0), 0);
}

static json_t *load(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    cr_assert_not_null(j, "%s: %s (line %d)", path, err.text, err.line);
    return j;
}

static long long ival(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "%s is not an integer", k);
    return json_integer_value(v);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Four workers with ranks, under vramspy run: the traces into dir/traces, the job JSON into
 * dir/job.json. */
static void four_ranks(const char *dir)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "exec '%s' run --out '%s/traces' --format json -o '%s/job.json' -- " VSP_PROGS "/prog_plan launch 4 "
             "label-activations leak",
             VRAMSPY, dir, dir);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "4 traces in"), "%s", r.err);
}

Test(job, four_ranks_merge_into_one_document_on_a_shared_time_axis)
{
    char *dir = th_tmpdir(), path[4200];
    four_ranks(dir);
    snprintf(path, sizeof path, "%s/job.json", dir);
    json_t *j = load(path);
    cr_assert_str_eq(json_string_value(json_object_get(j, "schema")), "vramspy-job/1",
                     "vramspy run makes a job of several traces by default");
    json_t *procs = json_object_get(j, "processes"), *time = json_object_get(j, "time");
    cr_assert_eq(json_array_size(procs), 4);
    long long t0 = ival(time, "start_realtime_ns"), t1 = ival(time, "end_realtime_ns");
    cr_assert_eq(ival(time, "duration_ns"), t1 - t0);
    const char *host = NULL;
    long long min_start = -1;
    for (size_t i = 0; i < 4; i++) {
        json_t *p = json_array_get(procs, i);
        cr_assert_eq(ival(p, "rank"), (long long)i, "processes in rank order");
        cr_assert_eq(ival(p, "local_rank"), (long long)i);
        cr_assert_eq(ival(p, "world_size"), 4);
        cr_assert(json_is_string(json_object_get(p, "host")));
        if (!host)
            host = json_string_value(json_object_get(p, "host"));
        cr_assert_str_eq(json_string_value(json_object_get(p, "host")), host, "one machine");
        cr_assert_eq(json_array_size(json_object_get(p, "devices")), 1);
        cr_assert_eq(json_integer_value(json_array_get(json_object_get(p, "devices"), 0)), 0, "device 0");
        cr_assert_str_eq(json_string_value(json_object_get(p, "command_line")), "prog_plan label-activations leak");
        cr_assert(json_is_integer(json_object_get(p, "pid")));
        json_t *tot = json_object_get(p, "totals");
        cr_assert_eq(ival(tot, "peak_bytes"), 48ll << 20);
        cr_assert_eq(ival(tot, "live_bytes"), 1ll << 20);
        /* on the shared axis: inside the job's span, from the process's own anchor */
        long long s = ival(p, "start_ns"), e = ival(p, "end_ns"), pk = ival(p, "peak_ns");
        cr_assert_eq(s, ival(p, "start_realtime_ns") - t0);
        cr_assert(s >= 0 && s <= e && e <= t1 - t0, "%lld %lld %lld", s, e, t1 - t0);
        cr_assert(pk >= s && pk <= e, "peak %lld in [%lld, %lld]", pk, s, e);
        if (min_start < 0 || s < min_start)
            min_start = s;
    }
    cr_assert_eq(min_start, 0, "the axis starts with the first process");
    /* one device, every rank on it */
    json_t *devs = json_object_get(j, "devices");
    cr_assert_eq(json_array_size(devs), 1);
    json_t *d = json_array_get(devs, 0);
    cr_assert_eq(ival(d, "device"), 0);
    cr_assert_eq(json_array_size(json_object_get(d, "pids")), 4);
    cr_assert_eq(ival(d, "live_bytes"), 4ll << 20);
    cr_assert(ival(d, "peak_bytes") >= 48ll << 20 && ival(d, "peak_bytes") <= 4 * (48ll << 20),
              "%lld", ival(d, "peak_bytes"));
    /* the leak, once, in 4 of 4 */
    json_t *fs = json_object_get(j, "findings");
    cr_assert_eq(json_array_size(fs), 1, "%s", json_dumps(fs, 0));
    json_t *f = json_array_get(fs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(f, "kind")), "leak");
    cr_assert_eq(json_array_size(json_object_get(f, "pids")), 4);
    cr_assert_eq(json_array_size(json_object_get(f, "ranks")), 4);
    cr_assert_eq(ival(f, "bytes"), 4ll << 20);
    cr_assert_eq(ival(f, "count"), 4);
    cr_assert_eq(ival(json_object_get(j, "summary"), "processes"), 4);
    json_decref(j);
}

Test(job, text_svg_and_junit_views_of_a_job)
{
    TH_SKIP_UNDER("tsan", "see four_ranks_merge_into_one_document_on_a_shared_time_axis");
    char *dir = th_tmpdir(), cmd[9000], plan[4200];
    four_ranks(dir);
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    th_write_file(plan, "{\"weights\": \"30MiB\", \"kv_cache\": \"12MiB\"}");
    struct run_result r;
    snprintf(cmd, sizeof cmd, "exec '%s' --job --plan '%s' --fail-on plan '%s'/traces/*.trace", REPORT, plan, dir);
    sh(&r, cmd);
    cr_assert_eq(r.code, 1, "weights +6.7%% in every rank: %s", r.err);
    cr_assert_not_null(strstr(r.out, "vramspy job: 4 processes on 1 host, 1 device"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "by rank:"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "by device"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "in 4 of 4 processes (ranks 0,1,2,3)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "plan weights measured 32.0 MiB against 30.0 MiB planned"), "%s", r.out);
    cr_assert_eq(count(r.out, "plan, at the device peak of device 0:"), 4, "a plan table per rank");
    cr_assert_not_null(strstr(r.out, "\nrank 3 (pid "), "%s", r.out);
    /* one SVG, every process on its time axis */
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format svg '%s'/traces/*.trace", REPORT, dir);
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_eq(count(r.out, "<svg "), 1, "one picture");
    cr_assert_geq(count(r.out, "prog_plan label-activations leak"), 4, "%s", r.out);
    /* JUnit: a suite per process */
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format junit --fail-on leak '%s'/traces/*.trace", REPORT, dir);
    sh(&r, cmd);
    cr_assert_eq(r.code, 1, "%s", r.err);
    cr_assert_eq(count(r.out, "<testsuite "), 4, "%s", r.out);
    /* vramspy run --no-job: one report each */
    snprintf(cmd, sizeof cmd,
             "exec '%s' run --no-job --out '%s/t2' --format json -o '%s/each.json' -- " VSP_PROGS "/prog_plan launch 2",
             VRAMSPY, dir, dir);
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char path[4200];
    snprintf(path, sizeof path, "%s/each.json", dir);
    json_t *j = load(path);
    cr_assert(json_is_array(j) && json_array_size(j) == 2);
    json_decref(j);
    /* a job's formats: no folded or perfetto job */
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format folded '%s'/traces/*.trace", REPORT, dir);
    sh(&r, cmd);
    cr_assert_eq(r.code, 2, "%s", r.err);
}

/* ---- two hosts: synthetic traces ---- */

static struct ring_fixture fx;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
    cr_assert_eq(ring_fixture_put(&fx, type, a, alen, b, blen), 0);
}

/* A library that is not on this machine (as the GPU machine's libcublas is not where the report
 * runs): its frames have a module and an offset but no function name. */
#define ABSENT_LIB "/opt/gone/lib/libcublas.so.13"
#define ABSENT_BASE 0x7f605c800000ull

/* A trace of a process on host `host` with rank `rank`, whose clocks read realtime/monotonic at
 * its start; it allocates 8 MiB `at` ns after its start and leaks it; in_lib: called from inside
 * ABSENT_LIB (offsets 0x5b45ee <- 0x585c43), else with no stack. */
static void host_trace_in(const char *path, uint32_t pid, const char *host, int rank, uint64_t realtime,
                          uint64_t monotonic, uint64_t at, int in_lib)
{
    cr_assert_eq(ring_fixture_open(&fx, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    fx.ring.hdr->start_realtime_ns = realtime;
    fx.ring.hdr->start_monotonic_ns = monotonic;
    fx.ring.hdr->pid = pid;
    static const char exe[] = "/opt/bin/worker";
    struct vsp_rec_process p = {.pid = pid, .ppid = 1, .exe_len = sizeof exe, .start_realtime_ns = realtime};
    put(VSP_REC_PROCESS, &p, sizeof p, exe, sizeof exe);
    struct vsp_rec_host h = {.rank = rank, .local_rank = 0, .world_size = 2, .host_len = (uint32_t)strlen(host) + 1};
    put(VSP_REC_HOST, &h, sizeof h, host, strlen(host) + 1);
    if (in_lib) {
        struct vsp_rec_module m = {.base = ABSENT_BASE, .start = ABSENT_BASE, .end = ABSENT_BASE + 0x1000000,
                                   .path_len = sizeof ABSENT_LIB};
        put(VSP_REC_MODULE, &m, sizeof m, ABSENT_LIB, sizeof ABSENT_LIB);
        struct vsp_rec_stack s = {.id = 1, .nframes = 2};
        uint64_t frames[2] = {ABSENT_BASE + 0x5b45ee, ABSENT_BASE + 0x585c43};
        put(VSP_REC_STACK, &s, sizeof s, frames, sizeof frames);
    }
    struct vsp_rec_event e = {.time_ns = monotonic + at, .ptr = 0x7f9000000000ull, .size = 8u << 20, .tid = pid,
                              .stack_id = in_lib ? 1 : 0,
                              .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE, .seq = 0,
                              .device = 0, .free_bytes = UINT64_MAX, .total_bytes = UINT64_MAX};
    put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    struct vsp_rec_end end = {0};
    put(VSP_REC_END, &end, sizeof end, NULL, 0);
    fx.ring.hdr->end_monotonic_ns = monotonic + at + 1000;
    cr_assert_eq(ring_fixture_keep(&fx, path, 1), 0);
}

static void host_trace(const char *path, uint32_t pid, const char *host, int rank, uint64_t realtime,
                       uint64_t monotonic, uint64_t at)
{
    host_trace_in(path, pid, host, rank, realtime, monotonic, at, 0);
}

Test(job, traces_of_two_hosts_line_up_by_their_wall_clock_anchors)
{
    char *dir = th_tmpdir(), a[300], b[300], cmd[2000], out[300];
    snprintf(a, sizeof a, "%s/a.trace", dir);
    snprintf(b, sizeof b, "%s/b.trace", dir);
    /* node-b started 0.5 ms after node-a by the wall clock; their monotonic clocks have nothing in
     * common (node-b's reads 85 s more); each allocates 1 ms / 0.6 ms after its start */
    const uint64_t wall = 1790000000000000000ull;
    host_trace(b, 202, "node-b", 1, wall + 500000, 90000000000ull, 600000);
    host_trace(a, 101, "node-a", 0, wall, 5000000000ull, 1000000);
    snprintf(out, sizeof out, "%s/job.json", dir);
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format json -o '%s' '%s' '%s'", REPORT, out, b, a);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = load(out), *procs = json_object_get(j, "processes");
    cr_assert_eq(ival(json_object_get(j, "time"), "start_realtime_ns"), (long long)wall);
    json_t *pa = json_array_get(procs, 0), *pb = json_array_get(procs, 1);
    cr_assert_str_eq(json_string_value(json_object_get(pa, "host")), "node-a", "rank 0 first");
    cr_assert_str_eq(json_string_value(json_object_get(pb, "host")), "node-b");
    cr_assert_eq(ival(pa, "rank"), 0);
    cr_assert_eq(ival(pb, "rank"), 1);
    cr_assert_eq(ival(pa, "start_ns"), 0);
    cr_assert_eq(ival(pb, "start_ns"), 500000);
    cr_assert_eq(ival(pa, "peak_ns"), 1000000);
    cr_assert_eq(ival(pb, "peak_ns"), 1100000, "node-b's allocation after node-a's, by the wall clock");
    /* a device per host: same ordinal, different machines */
    json_t *devs = json_object_get(j, "devices");
    cr_assert_eq(json_array_size(devs), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(devs, 0), "host")), "node-a");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(devs, 1), "host")), "node-b");
    cr_assert_eq(ival(json_array_get(devs, 0), "peak_bytes"), 8ll << 20);
    cr_assert_eq(ival(json_object_get(j, "summary"), "hosts"), 2);
    /* the same leak in both */
    json_t *f = json_array_get(json_object_get(j, "findings"), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "findings")), 1);
    cr_assert_eq(json_array_size(json_object_get(f, "pids")), 2);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(f, "pids"), 0)), 101);
    json_decref(j);
    /* the text: both hosts, by rank */
    snprintf(cmd, sizeof cmd, "exec '%s' --job '%s' '%s'", REPORT, a, b);
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "2 processes on 2 hosts, 2 devices"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "node-b"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "in 2 of 2 processes (ranks 0,1)"), "%s", r.out);
}

/* Issue 23: on the GPU machine the job's merged findings said "at 0x7f605cdb45ee <- 0x7f605cd85c43"
 * where each process's report said libcublas.so.13+0x5b45ee: a frame without a function name is
 * named the same way (module+offset) in both views. */
Test(job, merged_findings_name_unsymbolised_frames_as_the_single_process_report_does)
{
    char *dir = th_tmpdir(), a[300], b[300], cmd[2000];
    snprintf(a, sizeof a, "%s/a.trace", dir);
    snprintf(b, sizeof b, "%s/b.trace", dir);
    const uint64_t wall = 1790000000000000000ull;
    host_trace_in(a, 101, "node-a", 0, wall, 5000000000ull, 1000000, 1);
    host_trace_in(b, 202, "node-a", 1, wall + 1000, 6000000000ull, 1000000, 1);
    struct run_result r;
    snprintf(cmd, sizeof cmd, "exec '%s' '%s'", REPORT, a);
    sh(&r, cmd);
    cr_assert_not_null(strstr(r.out, "libcublas.so.13+0x5b45ee"), "single-process text: %s", r.out);
    snprintf(cmd, sizeof cmd, "exec '%s' --job '%s' '%s'", REPORT, a, b);
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "at libcublas.so.13+0x5b45ee <- libcublas.so.13+0x585c43: in 2 of 2 processes"),
                       "%s", r.out);
    cr_assert_null(strstr(r.out, "0x7f605c"), "no raw address in the job's text: %s", r.out);
}
