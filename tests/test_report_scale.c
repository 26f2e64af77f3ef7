/* Tests of the report's cost on many findings (issue 20, item 16): the text report names each
 * finding's call site by the frames that tell it from the others' stacks; done pairwise that was
 * quadratic (59 s for 16,384 leak stacks). The work is counted (VRAMSPY_REPORT_STATS), not timed:
 * it must stay linear in the findings' frames. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ring_fixture.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"
#define NSTACKS 16384
#define DEPTH 6

static struct ring_fixture fx;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen)
{
    cr_assert_eq(ring_fixture_put(&fx, type, a, alen, b, blen), 0);
}

/* A complete trace with NSTACKS leaks, each from its own stack; every stack goes through the same
 * allocating helper (frame 0) and differs from the others at frame 1 (its caller). */
static void many_leaks(const char *path)
{
    cr_assert_eq(ring_fixture_open(&fx, 1 << 20, VSP_ON_FULL_WAIT), 0);
    static const char exe[] = "/opt/bin/leaky";
    struct vsp_rec_process p = {.pid = 4242, .ppid = 1, .exe_len = sizeof exe};
    put(VSP_REC_PROCESS, &p, sizeof p, exe, sizeof exe);
    for (uint32_t i = 0; i < NSTACKS; i++) {
        struct {
            struct vsp_rec_stack s;
            uint64_t f[DEPTH];
        } st = {{.id = i + 1, .nframes = DEPTH},
                {0x401000, 0x500000 + 16ull * i, 0x402000, 0x403000, 0x404000, 0x405000}};
        put(VSP_REC_STACK, &st, sizeof st, NULL, 0);
        struct vsp_rec_event e = {.time_ns = 1000 + i, .ptr = 0x7f0000000000ull + 4096ull * i, .size = 4096,
                                  .stack_id = i + 1, .tid = 4242, .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC,
                                  .memory = VSP_MEM_DEVICE, .seq = i, .device = 0, .free_bytes = UINT64_MAX,
                                  .total_bytes = UINT64_MAX};
        put(VSP_REC_EVENT, &e, sizeof e, NULL, 0);
    }
    struct vsp_rec_end end = {0};
    put(VSP_REC_END, &end, sizeof end, NULL, 0);
    cr_assert_eq(ring_fixture_keep(&fx, path, 1), 0);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(report_scale, site_names_of_16384_leak_stacks_take_linear_work, .timeout = 600)
{
    char *dir = th_tmpdir(), trace[300], out[300], cmd[1000];
    snprintf(trace, sizeof trace, "%s/many.trace", dir);
    snprintf(out, sizeof out, "%s/report.txt", dir);
    many_leaks(trace);
    struct run_result r;
    snprintf(cmd, sizeof cmd, "exec '%s' -o '%s' '%s'", REPORT, out, trace);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL}, *env[] = {"VRAMSPY_REPORT_STATS=1", NULL};
    cr_assert_eq(th_run(&r, argv, env, 0, 1), 0);
    cr_assert_eq(r.code, 0, "%s", r.err);
    unsigned long long work = 0;
    const char *w = strstr(r.err, "site-name work ");
    cr_assert_not_null(w, "no work counter: %s", r.err);
    work = strtoull(w + strlen("site-name work "), NULL, 10);
    /* linear: a few hash steps per frame of each finding's stack (pairwise: 16384^2 = 2.7e8) */
    cr_assert_leq(work, 4ull * NSTACKS * (DEPTH + 2), "site names took %llu steps for %d stacks", work, NSTACKS);
    cr_assert_geq(work, (unsigned long long)NSTACKS, "every finding named: %llu", work);
    /* and the names still tell the sites apart: the shared helper, then each one's own caller */
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    static char text[16 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cr_assert_eq(count(text, "\nLEAK "), NSTACKS);
    cr_assert_eq(count(text, "  at 0x401000 <- 0x5"), NSTACKS, "each site by the helper and its caller");
    cr_assert_not_null(strstr(text, "  at 0x401000 <- 0x53fff0\n"), "the last caller named");
}
