/* The report's other renderings: folded stacks (flame graphs), Chrome trace-event JSON (Perfetto,
 * chrome://tracing), a self-contained SVG timeline, and JUnit XML for CI reporters. Each writes
 * one trace's part; the begin/end functions wrap several traces into one document. */
#ifndef VSP_FORMATS_H
#define VSP_FORMATS_H

#include <stdio.h>

#include "analyze.h"
#include "symbolize.h"

enum vsp_weigh { VSP_WEIGH_LEAKS = 0, VSP_WEIGH_PEAK, VSP_WEIGH_ALLOCATED };

void vsp_folded(FILE *out, const struct vsp_analysis *a, struct vsp_symbolizer *sym, int weigh);

void vsp_perfetto_begin(FILE *out);
void vsp_perfetto_trace(FILE *out, const struct vsp_analysis *a, int first);
void vsp_perfetto_end(FILE *out);

void vsp_svg_begin(FILE *out, int ntraces);
void vsp_svg_trace(FILE *out, const char *path, const struct vsp_analysis *a, int index);
void vsp_svg_end(FILE *out);

void vsp_junit_begin(FILE *out);
void vsp_junit_trace(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                     unsigned checked_mask);
void vsp_junit_end(FILE *out);

/* "function" or "module+0xoffset" (module base name) or "0xaddress". */
void vsp_frame_label(const struct vsp_frame_info *f, char *buf, size_t len);

#endif
