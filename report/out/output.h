/* Rendering of an analysis as JSON (schema vramspy-report/1) or text; see docs/report.md. */
#ifndef VSP_OUTPUT_H
#define VSP_OUTPUT_H

#include "shim/common/human.h"

#include <jansson.h>
#include <stdio.h>

#include "report/analyze/analyze.h"
#include "report/analyze/symbolize.h"

struct vsp_purposes;
/* Group bytes by purpose: the label the program pushed (trace LABEL records), else the first
 * --purposes rule matching a frame of the stack (innermost first), else "(unlabelled)". Fills
 * a->purposes; does nothing when there are neither labels nor rules. */
void vsp_purpose_breakdown(struct vsp_analysis *a, const struct vsp_purposes *rules, struct vsp_symbolizer *sym);

/* The name of an API's result code (cudaError_t for runtime APIs, CUresult for driver APIs):
 * "cudaErrorInsufficientDriver", "CUDA_ERROR_NO_DEVICE"..., "unknown" when not in the table. */
const char *vsp_result_name(unsigned api, int32_t result);
/* "SIGSEGV"..., "signal" when unnamed. */
const char *vsp_signal_name(int sig);

/* libc's start-up frames under main (__libc_start_call_main, __libc_start_main, _start): the same
 * in every stack, left out of text (kept in JSON). */
int vsp_startup_function(const char *function);
/* "function" or "module+0xoffset" (module base name) or "0xaddress". */
void vsp_frame_label(const struct vsp_frame_info *f, char *buf, size_t len);
/* "NAME ARG1 ARG2": the executable's base name and its arguments, malloc'd ("?" when out of
 * memory). What names a process in a document compared across runs: never the pid. */
char *vsp_command_line(const struct vsp_analysis *a);

/* A call site's name: the innermost frame, and as many frames out as it takes to tell it from the
 * other findings' stacks that share that frame ("make_buffer (leaky.c:4) <- main (leaky.c:12)"). */
void vsp_site_name(char *buf, size_t len, const struct vsp_analysis *a, struct vsp_symbolizer *sym, uint32_t stack_id);
/* The work vsp_site_name has done in this process (frames hashed or looked up): linear in the
 * findings' frames, whatever their number (VRAMSPY_REPORT_STATS shows it). */
uint64_t vsp_site_work(void);

/* Names from a trace or a command line are any bytes. The rule everywhere: a byte that is not part
 * of valid UTF-8 (and, in text, a control character) is written as the four characters \xNN
 * (lower-case hex); everything else as it is. vsp_escape_bytes: malloc'd, NULL when out of
 * memory. vsp_json_text: a JSON string (null for NULL). vsp_fputs_text: to text output. */
char *vsp_escape_bytes(const char *s, int control);
/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there are not one (overlong
 * forms, surrogates and code points beyond U+10FFFF are not). */
int vsp_utf8_seq(const unsigned char *s);
json_t *vsp_json_text(const char *s);
void vsp_fputs_text(FILE *out, const char *s);

json_t *vsp_report_json(const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym);
/* "512 B", "1.5 MiB"... */
void vsp_report_text(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym, int color);

#endif
