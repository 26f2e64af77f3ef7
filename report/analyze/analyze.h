/* The analysis behind vramspy-report: one streaming pass over a trace that keeps only what is
 * live, the distinct stacks and the findings being aggregated — memory grows with live
 * allocations and distinct stacks, never with the number of events. */
#ifndef VSP_ANALYZE_H
#define VSP_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "vramspy/trace_format.h"

enum vsp_finding_kind {
    VSP_F_LEAK = 0,
    VSP_F_HOST_FALLBACK,
    VSP_F_OOM,
    VSP_F_FRAGMENTATION,
    VSP_F_INVALID_FREE,
    VSP_F_PEAK,           /* budget: device peak above --max-peak */
    VSP_F_CRASH,          /* the process ended by a signal, or its trace has no END and it is gone */
    VSP_F_ALLOC_ERROR,    /* allocations that failed with an error other than out-of-memory */
    VSP_F_UNTRACKED,      /* device memory the process holds that no hook saw (USAGE records) */
    VSP_F_PLAN,           /* --plan: a purpose outside its tolerance, or HIGH headroom risk */
    VSP_F_CACHED,         /* live at the end of a complete trace, held by a framework (holder rules) */
    VSP_F_GROWTH,         /* a call site whose live bytes keep reaching new highs in the second half */
    VSP_F_COUNT_
};

/* Names as they appear in JSON ("kind") and in --fail-on. */
const char *vsp_finding_json_name(int kind);  /* leak, host_fallback, oom, fragmentation, invalid_free,
                                                 peak, crash, alloc_error, untracked, plan, cached, growth */
const char *vsp_finding_cli_name(int kind);   /* leak, host-fallback, oom, fragmentation, invalid-free,
                                                 peak, crash, alloc-error, untracked, plan, cached, growth */
/* The order findings are listed in: leaks, then what frameworks hold at exit, then growth, then
 * the rest in enum order. */
int vsp_finding_rank(int kind);

struct vsp_module {
    uint64_t base, start, end;
    char *path;
    unsigned char build_id[64];
    unsigned build_id_len;
};

/* A Python code object (PYCODE record): the names its frames show. */
struct vsp_pycode {
    uint32_t id;
    uint32_t firstline;
    char *name; /* qualified name (co_qualname; co_name before 3.11) */
    char *file; /* co_filename as the interpreter had it */
};

struct vsp_analysis;

/* report/analyze/pycode.c: a PYCODE record into a->pycodes (0, or -1 out of memory; a malformed record
 * is ignored); the code object of an id (NULL unknown); free them. */
int vsp_pycode_add(struct vsp_analysis *a, const void *payload, uint32_t len);
const struct vsp_pycode *vsp_pycode_find(const struct vsp_analysis *a, uint32_t id);
void vsp_pycodes_free(struct vsp_analysis *a);
/* The innermost Python frame of a stack as "Model.load_weights (model.py:42)" into buf; 0 when
 * the stack has none (buf ""). Needs no symboliser: the names are the trace's. */
int vsp_python_site(const struct vsp_analysis *a, uint32_t stack_id, char *buf, size_t len);

/* A stack's frames are its native return addresses, innermost first, and, from a trace of
 * version 4, its Python frames (VSP_PYFRAME words): after the native ones as recorded, or in the
 * place of the eval-loop frames that ran them once the symboliser merged them
 * (vsp_sym_merge_python); a Python frame's module is -1. */
struct vsp_stack {
    uint32_t id;
    uint32_t nframes;
    uint64_t *frames;
    int *module;     /* index into modules per frame, -1 unknown */
};

struct vsp_finding {
    int kind;
    uint16_t api;
    uint8_t memory;
    uint32_t stack_id;
    uint64_t count, bytes;
    uint64_t requested, free_bytes, total_bytes; /* oom/fragmentation (UINT64_MAX: unknown) */
    uint64_t address;                            /* invalid_free */
    int double_free;                             /* invalid_free: 1 double_free, 0 unknown_pointer */
    int after_oom;                               /* host_fallback */
    int denied;                                  /* host_fallback: refused by VRAMSPY_ENFORCE */
    uint64_t limit;                              /* peak: the --max-peak budget */
    uint64_t first_time_ns;
    int32_t result;                              /* alloc_error: the call's result code */
    int signal;                                  /* crash: the signal (0: unknown) */
    int uncertain;                               /* events were lost that could have produced it */
    uint32_t alloc_stack_id;                     /* invalid_free (double free): where it was allocated */
    uint32_t first_free_stack_id;                /* invalid_free (double free): where it was first freed */
    int32_t device;                              /* plan: the device compared (-1: the process) */
    int graph;                                   /* leak: of graph memory nodes */
    char purpose[24];                            /* plan: the purpose ("weights"... "total", or
                                                    "headroom" for a HIGH risk) */
    uint64_t planned;                            /* plan: planned bytes (headroom: device memory x
                                                    utilisation); bytes holds what was measured */
    double deviation, tolerance;                 /* plan: (measured - planned) / planned, allowed */
    const char *held_by;                         /* cached: the holder (a holder rule's held_by; the
                                                    rules outlive the analysis) */
    uint64_t at_half, high;                      /* growth: the site's high-water mark of live bytes at
                                                    half the run, and at its end; bytes = high - at_half */
    double rate;                                 /* growth: bytes per second over the second half */
    /* oom/fragmentation of physical memory (cuMemCreate): the chunks the same thread created before
     * the failure (one request mapped chunk by chunk, as PyTorch's expandable segments do), and
     * those of them it released right after it; the largest run when the finding merges failures */
    struct vsp_chunk_run {
        uint64_t chunks, bytes;     /* created since the thread last released physical memory */
        uint64_t chunk_bytes;       /* their size when all had one, else 0 */
        uint64_t mapped;            /* cuMemMap calls of the thread in that time */
        uint64_t released_chunks, released_bytes; /* of those, gone after the failure, before the
                                                     thread's next allocation of physical memory */
        uint64_t released_created_ns; /* from the first released chunk's creation to the failure */
        uint64_t released_ns;       /* from the failure to the last release */
    } run;
};

/* Timeline: live bytes per memory kind, downsampled to at most VSP_TIMELINE_MAX points (each
 * point keeps the maximum of what it covers), and the instants worth marking. */
#define VSP_TIMELINE_MAX 2048
struct vsp_sample {
    uint64_t t0, t1;                  /* time span covered (ns, CLOCK_MONOTONIC of the process) */
    uint64_t bytes[VSP_MEM_COUNT_];   /* max live bytes per memory kind in the span */
};
struct vsp_instant {
    uint64_t time_ns;
    int kind;                         /* VSP_F_OOM, VSP_F_FRAGMENTATION, VSP_F_HOST_FALLBACK */
    uint16_t api;
    uint64_t size;
    uint32_t stack_id;                /* the call's stack (its Python site shows in SVG and Perfetto) */
};
#define VSP_INSTANTS_MAX 10000

/* Bytes by stack: allocated in total (and when weighing by peak, live at the peak). */
struct vsp_stack_bytes {
    uint32_t stack_id;
    uint16_t api;
    uint16_t label;        /* purpose label id from the trace (0: none) */
    uint8_t device;        /* the api allocates device memory (else managed or host memory) */
    uint64_t allocations;  /* successful allocation calls */
    uint64_t allocated;
    uint64_t live_at_peak; /* device bytes live at the device peak (second pass) */
    uint64_t live_end;     /* bytes of every kind live at the end */
};

struct vsp_analysis {
    /* process */
    uint32_t pid, ppid;
    char *exe;
    char **argv;
    int argc;
    /* trace */
    int complete;
    uint64_t events, dropped, torn; /* torn includes `abandoned` */
    uint64_t abandoned;           /* calls left by a jump out of a hook (END record): not traced */
    int log_failed;           /* the shim could not write all of its log (disk full, file size limit) */
    int coarse_clock;         /* event times at the kernel's tick (VRAMSPY_CLOCK=coarse) */
    int in_progress;              /* the process is still running (same pid and start time) */
    int signal;                   /* the signal that ended the process (0: none known) */
    /* totals */
    uint64_t allocations, frees, failed, peak_bytes, live_bytes, live_allocations;
    uint64_t kind_live[VSP_MEM_COUNT_], kind_peak[VSP_MEM_COUNT_]; /* bytes by memory kind: now, most */
    uint64_t host_allocations;
    /* modules and stacks */
    struct vsp_module *modules;
    size_t nmodules;
    struct vsp_stack *stacks;     /* sorted by id after analysis */
    size_t nstacks;
    /* findings, sorted by kind then bytes (descending) */
    struct vsp_finding *findings;
    size_t nfindings;
    uint64_t suppressed;          /* findings dropped by --suppress rules or --min-leak */
    /* peak */
    uint64_t peak_time_ns, peak_event;   /* when the device peak was reached (event index) */
    uint16_t peak_api;
    uint32_t peak_stack;
    /* timeline */
    struct vsp_sample *samples;
    size_t nsamples;
    uint64_t sample_span_ns;      /* current bucket width (0 until the first merge) */
    struct vsp_instant *instants;
    size_t ninstants;
    uint64_t first_time_ns, last_time_ns;
    /* coverage (USAGE records): at the sample where the gap was largest */
    struct vsp_coverage {
        int have;
        uint32_t source;          /* enum vsp_usage_source */
        uint64_t used_bytes, baseline_bytes, traced_bytes, untracked_bytes;
        uint64_t pool_cached_bytes; /* what device pools reserved beyond what they handed out
                                       (POOL samples: reserved - used), at that sample */
        uint64_t samples;
    } coverage;
    /* memory pools (POOL records): the last sample of each pool */
    struct vsp_pool_row {
        uint64_t pool;
        int host;
        uint64_t reserved_current, reserved_high, used_current, used_high;
    } *pools;
    size_t npools;
    /* bytes by (stack, api, label) */
    struct vsp_stack_bytes *by_stack;
    size_t nby_stack;
    /* purpose labels named in the trace (LABEL records): labels[id], NULL when unnamed */
    char **labels;
    size_t nlabels;
    /* Python code objects named in the trace (PYCODE records, version 4), sorted by id:
     * report/analyze/pycode.c */
    struct vsp_pycode *pycodes;
    size_t npycodes, cappycodes;
    /* the breakdown by purpose, filled by the report (output.c: vsp_purpose_breakdown) */
    struct vsp_purpose_row {
        char label[64];
        uint64_t live_bytes;      /* device bytes live at the end */
        uint64_t peak_bytes;      /* device bytes live at the device peak */
        uint64_t host_live_bytes; /* managed and pinned/mapped/registered host bytes live at the end */
        uint64_t allocated, allocations;
    } *purposes;
    size_t npurposes;
    /* where it ran (HOST record; have_host 0: the trace has none) and the header's wall-clock
     * anchor: event time t (CLOCK_MONOTONIC) is wall-clock start_realtime_ns + t - start_monotonic_ns */
    int have_host;
    char *host;
    int32_t rank, local_rank, world_size;  /* -1: not set */
    uint64_t start_realtime_ns, start_monotonic_ns;
    /* the device's total memory (USAGE records, or a failed allocation's report); 0: unknown */
    uint64_t device_total_bytes;
    /* device bytes by device ordinal (-1: unknown), in order of first use */
    struct vsp_device_row {
        int32_t device;
        uint64_t peak_bytes, live_bytes;
        uint64_t peak_event;                 /* the event that reached the device's peak */
        uint64_t *live_at_peak;              /* several devices (second pass): per by_stack entry,
                                                its bytes on this device at this device's peak */
        struct vsp_purpose_row *purposes;    /* filled with a->purposes (vsp_purpose_breakdown) */
        size_t npurposes;
    } *devices;
    size_t ndevices;
    /* --plan: the comparison (report/analyze/plan.c fills it, the report renders it); NULL without a plan */
    struct vsp_plan_result *plan;
    /* output.c's index of the findings' call stacks for vsp_site_name, built on first use (one
     * allocation; freed with the analysis) */
    struct vsp_site_index *sites;
    char error[700];              /* set when the trace could not be read */
};

struct vsp_analyze_opts {
    uint64_t fallback_window_ns; /* host allocation within this long after a device OOM on the same
                                    thread is "after_oom" (default 5 s) */
    uint64_t max_peak;           /* --max-peak: a "peak" finding above it (0: no budget) */
    int live_at_peak;            /* compute vsp_stack_bytes.live_at_peak (a second pass) */
    uint64_t untracked_min;      /* --untracked-min: an "untracked" finding above it (0: 256 MiB) */
    uint64_t growth_min;         /* --growth-min: a growth finding rises at least this much over the
                                    second half (0: 32 MiB) */
    uint32_t signal_pid;         /* --signal PID=N: the process PID ended by signal N */
    int signal;                  /*   (vramspy run knows it; 0: not given) */
};

/* 0: analysed (a->complete says whether everything was there); -1: unreadable or corrupt
 * (a->error: one line naming the file, what is wrong and the offset). */
int vsp_analyze_file(const char *path, const struct vsp_analyze_opts *o, struct vsp_analysis *a);
void vsp_analysis_free(struct vsp_analysis *a);

const struct vsp_stack *vsp_analysis_stack(const struct vsp_analysis *a, uint32_t id);

/* Sort a->findings by rank, then bytes (descending); cached findings by holder first. */
void vsp_sort_findings(struct vsp_analysis *a);

/* The process's own clock (CLOCK_MONOTONIC): the first instant the analysis saw (its first
 * timeline sample, else its first event), and the last (its last event, or the end of its last
 * sample when later). */
uint64_t vsp_analysis_first_ns(const struct vsp_analysis *a);
uint64_t vsp_analysis_end_ns(const struct vsp_analysis *a);
/* When the process began, to order processes by: the header's wall-clock start when the trace has
 * the anchor (start_realtime_ns and start_monotonic_ns), else vsp_analysis_first_ns. */
uint64_t vsp_analysis_start_key(const struct vsp_analysis *a);

#endif
