/* --job: several traces (the processes of one job: torchrun, MPI, one worker per GPU) as one
 * document — JSON schema vramspy-job/1 or a text summary per device and per rank, on one time
 * axis (each trace's wall-clock anchor), findings merged across processes. docs/report.md. */
#ifndef VSP_JOB_H
#define VSP_JOB_H

#include <jansson.h>
#include <stdio.h>

#include "report/analyze/analyze.h"

struct vsp_job_proc {
    const char *path;
    const struct vsp_analysis *a; /* analysed, purposes and plan applied */
    json_t *report;               /* its vramspy-report/1 document (findings with symbolised stacks) */
};

/* Whether two analyses are one process (the same trace given twice, or two copies of it): same
 * host, pid, boot and start (the header's realtime and monotonic clocks at its start). Two ranks
 * with one pid in two containers or on two hosts are two processes. */
int vsp_job_same_process(const struct vsp_analysis *a, const struct vsp_analysis *b);

/* The vramspy-job/1 document (a new reference). */
json_t *vsp_job_json(const struct vsp_job_proc *p, size_t n);
/* The same for people: processes by rank, devices, merged findings, plans. */
void vsp_job_text(FILE *out, const struct vsp_job_proc *p, size_t n, int color);

#endif
