/* Rendering of an analysis as JSON (schema vramspy-report/1) or text; see docs/report.md. */
#ifndef VSP_OUTPUT_H
#define VSP_OUTPUT_H

#include "human.h"

#include <jansson.h>
#include <stdio.h>

#include "analyze.h"
#include "symbolize.h"

struct vsp_purposes;
/* Group bytes by purpose: the label the program pushed (trace LABEL records), else the first
 * --purposes rule matching a frame of the stack (innermost first), else "(unlabelled)". Fills
 * a->purposes; does nothing when there are neither labels nor rules. */
void vsp_purpose_breakdown(struct vsp_analysis *a, const struct vsp_purposes *rules, struct vsp_symbolizer *sym);

json_t *vsp_report_json(const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym);
/* "512 B", "1.5 MiB"... */
void vsp_report_text(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym, int color);

#endif
