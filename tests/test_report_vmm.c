/* Tests of the report on the driver's virtual memory management (issue 20, item 4): one cuMemUnmap
 * covers every mapping inside its range, so NVIDIA's growable vector (a chunk mapped per cuMemMap,
 * one unmap of the whole range, a cuMemRelease per chunk) is not a leak, and a chunk whose handle
 * is never released still is. Run on the CUDA test doubles (tests/progs/prog_vmm_vector.c). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"

static json_t *vector_report(const char *leak, struct run_result *r)
{
    char *dir = th_tmpdir(), trace[4200], cmd[9000];
    const char *argv[] = {VSP_PROGS "/prog_vmm_vector", "3", leak, NULL};
    th_run_traced(r, argv, dir, "vec.trace", NULL);
    cr_assert_eq(r->code, 0, "%s", r->err);
    snprintf(trace, sizeof trace, "%s/vec.trace", dir);
    snprintf(cmd, sizeof cmd, "--format json '%s'", trace);
    th_report(r, cmd);
    cr_assert_eq(r->code, 0, "%s", r->err);
    return th_json(r->out);
}

static uint64_t leaked_bytes(json_t *rep)
{
    uint64_t b = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(rep, "findings"), i, f)
        if (!strcmp(json_string_value(json_object_get(f, "kind")), "leak"))
            b += (uint64_t)json_integer_value(json_object_get(f, "bytes"));
    return b;
}

Test(report_vmm, one_unmap_of_a_growable_vector_frees_every_chunk)
{
    struct run_result r;
    json_t *rep = vector_report("", &r);
    cr_assert_eq(leaked_bytes(rep), 0, "the growable vector is not a leak: %s", r.out);
    json_t *tot = json_object_get(rep, "totals");
    cr_assert_eq(json_integer_value(json_object_get(tot, "live_bytes")), 0, "%s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(tot, "peak_bytes")), 3 * (16ll << 20), "%s", r.out);
    json_decref(rep);
}

Test(report_vmm, a_chunk_never_released_is_still_a_leak)
{
    struct run_result r;
    json_t *rep = vector_report("leak", &r);
    cr_assert_eq(leaked_bytes(rep), 16u << 20, "one chunk of 16 MiB kept: %s", r.out);
    json_decref(rep);
}
