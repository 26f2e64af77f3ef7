/* The in-process diagnostics that the record room drives: purpose labels (labels.c), the
 * in-process symboliser and the out-of-memory breakdown (oom.c), coverage samples (usage.c) and
 * the metrics file (metrics.c). Pools have their own header (pools.h). */
#ifndef VSP_INPROC_H
#define VSP_INPROC_H

#include <stddef.h>
#include <stdint.h>

#include "shim/base/process.h"

/* --- labels.c --- */
uint16_t vsp_label_intern(const char *name);  /* 0 for none / table full */
const char *vsp_label_name(uint16_t id);
uint16_t vsp_label_current(void);             /* innermost pushed label of this thread, 0 none */
void vsp_labels_sync(uint16_t id);            /* LABEL records up to id are in the trace */
void vsp_labels_reset_trace(void);
uint16_t vsp_stack_label(uint32_t stack_id);  /* label from VRAMSPY_PURPOSES rules, 0 none */
void vsp_purposes_load(void);                 /* at init, when VRAMSPY_PURPOSES is set */
/* (vsp_stack_label_compute, which walk/unwind.c calls, is in base/process.h) */

/* --- oom.c: the in-process symboliser --- */
/* Expand the return address addr into up to max frames (inline chain, innermost first) with
 * libvramspy-sym.so, loaded on first need; dladdr's symbol when it cannot be loaded. Callers are
 * inside vsp_walk_enter/leave; calls are serialised here. Returns the number written (>= 1). */
struct vsp_frame_info;
int vsp_inproc_frames(uint64_t addr, struct vsp_frame_info *out, int max, char *module, size_t mlen);
void vsp_inproc_atfork_child(void);
int vsp_inproc_preload(void); /* load the symboliser now (VRAMSPY_PURPOSES at start-up); 0 if loaded */

/* --- usage.c: coverage samples (USAGE records); call with a trace open --- */
void vsp_usage_sample(int reason);   /* enum vsp_usage_reason */
int vsp_usage_baseline_taken(void);
void vsp_usage_atfork_child(void);
void vsp_usage_prepare(void);        /* at the trace's opening: load NVML (no file opened later) */

/* --- metrics.c --- */
void vsp_metrics_start(void);        /* after the trace is set up: the writer thread */
void vsp_metrics_write(void);        /* now (at exit) */
void vsp_metrics_atfork_child(void);

/* --- oom.c --- */
/* On a failed device allocation: a breakdown of what holds device memory, on stderr, now. */
void vsp_oom_breakdown(const struct vsp_call *c, uint32_t stack_id, uint64_t free_b, uint64_t total_b,
                       int have_info);

#endif
