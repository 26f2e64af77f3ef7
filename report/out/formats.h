/* The report's other renderings: folded stacks (flame graphs), Chrome trace-event JSON (Perfetto,
 * chrome://tracing), a self-contained SVG timeline, and JUnit XML for CI reporters. Each writes
 * one trace's part; the begin/end functions wrap several traces into one document. */
#ifndef VSP_FORMATS_H
#define VSP_FORMATS_H

#include <stdint.h>
#include <stdio.h>

#include "report/analyze/analyze.h"
#include "report/analyze/symbolize.h"

enum vsp_weigh { VSP_WEIGH_LEAKS = 0, VSP_WEIGH_PEAK, VSP_WEIGH_ALLOCATED };

void vsp_folded(FILE *out, const struct vsp_analysis *a, struct vsp_symbolizer *sym, int weigh);

void vsp_perfetto_begin(FILE *out);
void vsp_perfetto_trace(FILE *out, const struct vsp_analysis *a, int first);
void vsp_perfetto_end(FILE *out);

/* SVG: every trace on one time axis (aligned by the wall-clock start in each trace's header), so
 * the document is written by vsp_svg_end; vsp_svg_trace keeps what it needs of the analysis. */
void vsp_svg_begin(FILE *out, int ntraces);
void vsp_svg_trace(FILE *out, const char *path, const struct vsp_analysis *a, int index);
void vsp_svg_end(FILE *out);

/* JUnit: one <testsuite> per process, named by its command line ("[child]" when its parent is
 * among the traces, "#k" for the k-th identical one in order of start; never the pid), one
 * <testcase> per kind in fail_mask, failing when the process has findings of that kind (uncertain
 * ones only when strict); other findings go in <system-out>. The `peak` case appears only with a
 * budget (max_peak, or a peak finding, which implies one). Written by vsp_junit_end. */
struct vsp_junit_opts {
    unsigned fail_mask; /* 1u << kind for each --fail-on kind */
    uint64_t max_peak;  /* --max-peak (0: none) */
    int strict;         /* --strict: uncertain findings fail too */
};
void vsp_junit_begin(FILE *out);
void vsp_junit_trace_opts(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                          const struct vsp_junit_opts *o);
void vsp_junit_end(FILE *out);

#endif
