/* Tests of what a job's process is (issue 20, items 11, 14, 15 and the job's SVG order): a process
 * is (host, boot, pid, start) — two ranks with one pid in two containers or on two hosts are two
 * processes, each with its own plan table, and the same trace given twice is one; merged findings
 * show each process's numbers (a range when they differ); --plan draws each purpose's planned
 * bytes in the SVG; a job's SVG panels come in rank order. Synthetic traces (tests/ring_fixture.h). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"

static struct ring_fixture fx;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
    cr_assert_eq(ring_fixture_put(&fx, type, a, alen, b, blen), 0);
}

struct proc {
    uint32_t pid;
    const char *host;
    int rank;
    uint64_t realtime, monotonic;
    uint64_t weights; /* bytes allocated under the label "weights" (and kept) */
};

static void proc_trace(const char *path, const struct proc *p)
{
    cr_assert_eq(ring_fixture_open(&fx, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    fx.ring.hdr->start_realtime_ns = p->realtime;
    fx.ring.hdr->start_monotonic_ns = p->monotonic;
    fx.ring.hdr->pid = p->pid;
    static const char exe[] = "/opt/bin/worker";
    struct vsp_rec_process pr = {.pid = p->pid, .ppid = 1, .exe_len = sizeof exe, .start_realtime_ns = p->realtime};
    put(VSP_REC_PROCESS, &pr, sizeof pr, exe, sizeof exe);
    struct vsp_rec_host h = {.rank = p->rank, .local_rank = 0, .world_size = 2,
                             .host_len = (uint32_t)strlen(p->host) + 1};
    put(VSP_REC_HOST, &h, sizeof h, p->host, strlen(p->host) + 1);
    static const char label[] = "weights";
    struct vsp_rec_label l = {.id = 1, .name_len = sizeof label};
    put(VSP_REC_LABEL, &l, sizeof l, label, sizeof label);
    struct vsp_rec_event e = {.time_ns = p->monotonic + 1000, .ptr = 0x7f9000000000ull, .size = p->weights,
                              .tid = p->pid, .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE,
                              .seq = 0, .device = 0, .free_bytes = UINT64_MAX, .total_bytes = UINT64_MAX,
                              .eflags = 1u << VSP_EVENT_LABEL_SHIFT};
    put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    struct vsp_rec_end end = {0};
    put(VSP_REC_END, &end, sizeof end, NULL, 0);
    fx.ring.hdr->end_monotonic_ns = p->monotonic + 2000;
    cr_assert_eq(ring_fixture_keep(&fx, path, 1), 0);
}

static void sh(struct run_result *r, const char *cmd)
{
    TH_SKIP_UNDER("tsan", "the report runs through /bin/sh here, which cannot start with the "
                          "ThreadSanitizer runtime preloaded");
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(th_run(r, argv, NULL, 2, 0), 0);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#define WALL 1790000000000000000ull
#define MiB (1ull << 20)

/* Two containers on one host (or two hosts): pid 7 in each, ranks 0 and 1, different starts. */
static void two_pid7(char *a, char *b, size_t len, const char *host_b)
{
    char *dir = th_tmpdir();
    snprintf(a, len, "%s/a.trace", dir);
    snprintf(b, len, "%s/b.trace", dir);
    struct proc pa = {7, "node-a", 0, WALL, 5000000000ull, 12 * MiB};
    struct proc pb = {7, host_b, 1, WALL + 300000, 5000300000ull, 16 * MiB};
    proc_trace(a, &pa);
    proc_trace(b, &pb);
}

Test(job_processes, two_ranks_with_one_pid_are_two_processes_each_with_its_own_plan)
{
    char a[300], b[300], cmd[2000], plan[400];
    two_pid7(a, b, sizeof a, "node-a"); /* one host name: two pid namespaces */
    snprintf(plan, sizeof plan, "%s.plan.json", a);
    th_write_file(plan, "{\"weights\": \"8MiB\"}");
    snprintf(cmd, sizeof cmd, "exec '%s' --job --plan '%s' '%s' '%s'", REPORT, plan, a, b);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "vramspy job: 2 processes"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "in 2 of 2 processes (ranks 0,1)"), "%s", r.out);
    /* each rank its own table: rank 0 measured 12 MiB, rank 1 16 MiB */
    const char *r0 = strstr(r.out, "\nrank 0 (pid 7"), *r1 = strstr(r.out, "\nrank 1 (pid 7");
    cr_assert(r0 && r1 && r0 < r1, "%s", r.out);
    cr_assert_not_null(strstr(r0, "12.0 MiB"), "%s", r.out);
    cr_assert(strstr(r1, "16.0 MiB") != NULL, "rank 1 shows its own table, not rank 0's: %s", r1);
    char *r1_12 = strstr(r1, "12.0 MiB");
    cr_assert_null(r1_12, "rank 1's table has rank 0's number: %s", r1);
    /* JSON: two entries for the merged finding, one per process */
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format json --plan '%s' '%s' '%s'", REPORT, plan, a, b);
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_t *j = th_json(r.out), *fs = json_object_get(j, "findings");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "summary"), "processes")), 2);
    json_t *f = th_json_find(fs, "kind", "plan");
    cr_assert_not_null(f, "%s", r.out);
    cr_assert_eq(json_array_size(json_object_get(f, "pids")), 2, "pid 7 twice: two processes");
    cr_assert_eq(json_array_size(json_object_get(f, "by_process")), 2);
    json_decref(j);
}

Test(job_processes, the_same_trace_given_twice_is_one_process)
{
    char a[300], b[300], cmd[2000], copy[320];
    two_pid7(a, b, sizeof a, "node-b");
    snprintf(copy, sizeof copy, "%s.copy", a);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && exec '%s' --job '%s' '%s' '%s' '%s'", a, copy, REPORT, a, b, a, copy);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "vramspy job: 2 processes on 2 hosts"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "in 2 of 2 processes"), "%s", r.out);
    cr_assert_eq(count(r.err, "counted once"), 2, "said so, for the path and for the copy: %s", r.err);
}

Test(job_processes, merged_findings_show_each_processes_numbers)
{
    char a[300], b[300], cmd[2000], plan[400];
    two_pid7(a, b, sizeof a, "node-b");
    snprintf(plan, sizeof plan, "%s.plan.json", a);
    th_write_file(plan, "{\"weights\": \"8MiB\"}");
    snprintf(cmd, sizeof cmd, "exec '%s' --job --plan '%s' '%s' '%s'", REPORT, plan, b, a);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "plan weights measured 12.0 MiB to 16.0 MiB against 8.0 MiB planned"), "%s", r.out);
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format json --plan '%s' '%s' '%s'", REPORT, plan, b, a);
    sh(&r, cmd);
    json_t *j = th_json(r.out), *f = th_json_find(json_object_get(j, "findings"), "kind", "plan");
    cr_assert_not_null(f);
    json_t *byp = json_object_get(f, "by_process");
    cr_assert_eq(json_array_size(byp), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(byp, 0), "measured_bytes")), 12 * MiB, "rank 0");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(byp, 1), "measured_bytes")), 16 * MiB, "rank 1");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(byp, 1), "rank")), 1);
    json_decref(j);
}

Test(job_processes, svg_panels_in_rank_order_with_planned_lines)
{
    char a[300], b[300], cmd[2000], plan[400];
    two_pid7(a, b, sizeof a, "node-b");
    snprintf(plan, sizeof plan, "%s.plan.json", a);
    th_write_file(plan, "{\"weights\": \"8MiB\", \"total\": \"20MiB\"}");
    /* rank 1 started later but is given first: its panel still comes second */
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format svg --plan '%s' '%s' '%s'", REPORT, plan, b, a);
    struct run_result r;
    sh(&r, cmd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    const char *p0 = strstr(r.out, "rank 0 on node-a"), *p1 = strstr(r.out, "rank 1 on node-b");
    cr_assert(p0 && p1 && p0 < p1, "panels in rank order: %s", r.out);
    cr_assert_eq(count(r.out, "<g class=\"planned\">"), 4, "weights and total in each panel: %s", r.out);
    cr_assert_not_null(strstr(r.out, "planned weights 8.0 MiB"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "planned total 20.0 MiB"), "%s", r.out);
    /* the same with the ranks the other way round in time */
    char c[320], d[320];
    snprintf(c, sizeof c, "%s.r1first", a);
    snprintf(d, sizeof d, "%s.r0later", b);
    struct proc pc = {11, "node-b", 1, WALL, 9000000000ull, 4 * MiB};
    struct proc pd = {12, "node-a", 0, WALL + 500000, 9000500000ull, 4 * MiB};
    proc_trace(c, &pc);
    proc_trace(d, &pd);
    snprintf(cmd, sizeof cmd, "exec '%s' --job --format svg '%s' '%s'", REPORT, c, d);
    sh(&r, cmd);
    p0 = strstr(r.out, "rank 0 on node-a");
    p1 = strstr(r.out, "rank 1 on node-b");
    cr_assert(p0 && p1 && p0 < p1, "rank 0 first although it started later: %s", r.out);
}
