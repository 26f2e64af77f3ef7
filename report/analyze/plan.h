/* --plan: the memory a job was planned to take, by purpose, measured against what it took
 * (docs/report.md, "The plan"). A plan is explicit sizes by purpose, or a model (a Hugging Face
 * config.json and run parameters) from which sizes are computed with the planners' formulas.
 * Loading validates everything and names the field at fault; comparing never fails. */
#ifndef VSP_PLAN_H
#define VSP_PLAN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "report/analyze/analyze.h"

enum vsp_plan_purpose {
    VSP_PLAN_WEIGHTS = 0,
    VSP_PLAN_KV_CACHE,
    VSP_PLAN_ACTIVATIONS,
    VSP_PLAN_OVERHEAD,
    VSP_PLAN_TOTAL,
    VSP_PLAN_COUNT_
};

/* "weights", "kv_cache", "activations", "overhead", "total" */
const char *vsp_plan_purpose_name(int p);

struct vsp_plan {
    int have[VSP_PLAN_COUNT_];       /* a size was given (or computed) for the purpose */
    uint64_t bytes[VSP_PLAN_COUNT_];
    double tolerance[VSP_PLAN_COUNT_];
    double utilization;              /* default 0.9 */
    uint64_t device_memory;          /* "device_memory": overrides the trace's (0: from the trace) */
    /* model form: overhead is computed per trace from its device memory */
    int model;
    int overhead_computed;           /* overhead = max(1 GiB, 2% of device) + 0.25 GiB x (tp - 1) */
    int tensor_parallel_size;
    double num_parameters;           /* counted or given */
    double bytes_per_parameter, kv_bytes_per_element;
};

struct vsp_plan_row {
    int purpose;
    const char *name;                /* vsp_plan_purpose_name(purpose), for renderers that do not
                                        link the planner (the SVG) */
    uint64_t planned;
    int have_measured;               /* 0: not measured (overhead when nothing labels activations) */
    uint64_t measured;
    double deviation;                /* (measured - planned) / planned; 0 when planned is 0 */
    double tolerance;
    int ok;
};

struct vsp_plan_result {
    struct vsp_plan_row rows[VSP_PLAN_COUNT_];
    int nrows;
    int activations_labelled;        /* the program labels activations */
    int32_t device;                  /* the device ordinal compared (-1: unknown or several) */
    int have_headroom;               /* the device's memory is known */
    uint64_t device_memory;
    double utilization;
    int64_t headroom_bytes;
    const char *risk;                /* "LOW", "MEDIUM", "HIGH", or NULL without device memory */
    /* a process using several devices: each device against the plan (the fields above are those
     * of the device with the highest peak); ndevices 0 otherwise */
    struct vsp_plan_result *devices;
    int ndevices;
};

/* Sizes as in the report's options: bytes, or a number with KiB/MiB/GiB/TiB, K/M/G/T, KB/MB/GB/TB
 * or B (decimals allowed). 0, or -1 when s is not one. */
int vsp_report_parse_size(const char *s, uint64_t *out);

/* Load and validate a plan file. 0, or -1 with err set to one line naming the field at fault. */
int vsp_plan_load(const char *path, struct vsp_plan *p, char *err, size_t errlen);
/* The same from a JSON object; dir: where relative config paths are (NULL: the current directory). */
int vsp_plan_from_json(json_t *root, const char *dir, struct vsp_plan *p, char *err, size_t errlen);

/* Compare with an analysis whose purpose breakdown is done (vsp_purpose_breakdown); sets a->plan
 * and adds a finding of kind plan for every purpose outside its tolerance and for HIGH risk.
 * 0, or -1 out of memory. */
int vsp_plan_apply(const struct vsp_plan *p, struct vsp_analysis *a);

json_t *vsp_plan_json(const struct vsp_plan_result *r);
void vsp_plan_text(FILE *out, const struct vsp_plan_result *r);

#endif
