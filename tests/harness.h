/* Test harness for the integration tests: run a test program with the build-tree shim preloaded
 * (and the CUDA test doubles on its library path), capture its output, and summarise the trace
 * it left with the real trace reader. */
#ifndef VSP_TEST_HARNESS_H
#define VSP_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vramspy/trace_format.h"

#ifndef VSP_BUILD_DIR
#error "VSP_BUILD_DIR must be defined by the Makefile"
#endif
#define VSP_SHIM VSP_BUILD_DIR "/libvramspy.so"
#define VSP_FAKES VSP_BUILD_DIR "/tests/fakes"
#define VSP_PROGS VSP_BUILD_DIR "/tests/progs"

struct run_result {
    int exited;       /* 1: exited, status in code; 0: killed, signal in sig */
    int code;
    int sig;
    char out[65536];  /* stdout */
    char err[65536];  /* stderr */
    pid_t pid;
};

/* Skip a test that cannot run with the preloaded sanitizer runtime named by `san` ("asan",
 * "tsan"), saying why. */
#ifdef VSP_SAN_RUNTIME
#define TH_SKIP_UNDER(san, why)                                     \
    do {                                                            \
        if (strstr(VSP_SAN_RUNTIME, san))                           \
            cr_skip_test("not under this sanitizer: %s", why);      \
    } while (0)
#else
#define TH_SKIP_UNDER(san, why) do { } while (0)
#endif

/* The LD_PRELOAD entry of th_run's preload 1, for a program a test starts itself: the build-tree
 * shim, after the sanitizer runtime in a SANITIZER= build. */
#ifdef VSP_SAN_RUNTIME
#define TH_PRELOAD_ENV "LD_PRELOAD=" VSP_SAN_RUNTIME ":" VSP_SHIM
#else
#define TH_PRELOAD_ENV "LD_PRELOAD=" VSP_SHIM
#endif

/* A fresh empty directory for one test; returns its path (static storage: one per test process). */
char *th_tmpdir(void);

/* Write text to path (created or truncated); the test fails if it cannot be opened. */
void th_write_file(const char *path, const char *text);

/* Run argv[0] (a path) with extra environment entries "K=V" (NULL-terminated, may be NULL).
 * preload: 1 = preload the shim; 2 = preload only the sanitizer runtime of a SANITIZER= build
 * (for vramspy run, which preloads the shim itself). Fakes are always on LD_LIBRARY_PATH unless nofakes. */
int th_run(struct run_result *r, const char *const *argv, const char *const *env, int preload, int nofakes);

/* Run argv under the shim (as th_run with preload 1, the fakes on the library path) with
 * VRAMSPY_OUT=<dir>/<trace> and the extra environment (NULL-terminated, may be NULL); asserts only
 * that it could be started. */
void th_run_traced(struct run_result *r, const char *const *argv, const char *dir, const char *trace,
                   const char *const *extra_env);

/* Run argv without the shim and no extra environment, then with the shim and env (NULL-terminated,
 * may be NULL), the fakes on the library path unless nofakes; asserts that the exit status and
 * stdout are the same. */
void th_run_both(struct run_result *plain, struct run_result *shim, const char *const *argv,
                 const char *const *env, int nofakes);

/* Start `path` with argv in the background under the shim, with only the fakes on its library path
 * and env ("K=V", NULL-terminated, may be NULL) as the rest of its environment, and wait for its
 * first output on stdout (a test program's "ready" line), which goes into first (len bytes, NUL-
 * terminated). Asserts that it said something; returns its pid, for the caller to kill and reap. */
pid_t th_start(const char *path, const char *const *argv, const char *const *env, char *first, size_t len);

/* Run vramspy-report from the source directory (trace paths relative to it, as in the goldens)
 * through /bin/sh with `args` as a shell command line's arguments; nothing preloaded, no fakes. */
void th_report(struct run_result *r, const char *args);

struct trace_summary {
    int ok;               /* the reader opened it and read to the end without error */
    char error[600];
    int complete;
    int finalized;
    uint64_t torn, skipped, dropped;
    uint32_t pid, ppid;
    char exe[4096];
    int argc;
    uint64_t events, allocs_ok, allocs_failed, frees_ok, frees_failed;
    uint64_t by_api[VSP_API_COUNT_];          /* events per API */
    uint64_t by_memory[VSP_MEM_COUNT_];       /* successful allocations per memory kind */
    uint64_t live_count, live_bytes;          /* recomputed from events */
    uint64_t live_device_bytes, peak_device_bytes;
    uint64_t stacks, modules, stack_refs_missing, max_frames;
    uint64_t oom_events, oom_with_meminfo;
    uint64_t denied;                          /* refused by VRAMSPY_ENFORCE */
    int has_end;
    struct vsp_rec_end end;
    uint64_t count_size[8];                   /* successful allocations of size_probe[i] */
    uint64_t usage_records, pool_records;     /* USAGE and POOL records */
    struct vsp_rec_usage first_usage, last_usage;
    uint64_t max_untracked;                   /* max over USAGE of used - first used - traced */
    uint32_t usage_source;                    /* of the last USAGE record */
    uint64_t pool_used_high;                  /* max used_high over POOL records */
    unsigned ok_free_frames;                  /* most frames in a successful free's stack */
    unsigned failed_free_frames;              /* most frames in a failed free's stack */
    uint64_t size_probe[8];
};

/* Read a trace and fill s. size probes (optional, 0-terminated) count allocations by size. */
int th_summarize(const char *path, struct trace_summary *s, const uint64_t *size_probes);

/* Paths of the trace files in dir (sorted); returns how many (at most max). */
int th_list_traces(const char *dir, char paths[][4096], int max);

/* Run argv without and with the shim (VRAMSPY_OUT=<dir>/t.%p.trace), the same extra environment for
 * both; asserts that exit status and stdout are the same. */
void th_run_pair(struct run_result *plain, struct run_result *shim, const char *const *argv, const char *dir,
                 const char *const *extra_env);

/* The one trace in dir, read into s (asserts there is exactly one and that it reads); its path into
 * path_out (4096 bytes) when not NULL. */
void th_one_trace(const char *dir, struct trace_summary *s, const uint64_t *probes, char *path_out);

/* The two traces of a forked pair in dir (asserts there are two, both read, that the parent is
 * parent_pid and that the child's parent is too). */
void th_fork_traces(const char *dir, uint32_t parent_pid, const uint64_t *probes, struct trace_summary *parent,
                    struct trace_summary *child);

/* vramspy-report --format json TRACE (exit 0 asserted), parsed. */
struct json_t *th_report_json(const char *trace);
/* Findings of one kind in a report: how many, and their summed count and bytes (may be NULL). */
size_t th_findings_of(struct json_t *report, const char *kind, int64_t *count, int64_t *bytes);

/* JSON output of the report (jansson): parsed, or the test fails showing the text. */
struct json_t;
struct json_t *th_json(const char *text);
/* The first object of `array` whose string member `key` equals `value` (NULL if none). */
struct json_t *th_json_find(struct json_t *array, const char *key, const char *value);

#endif
