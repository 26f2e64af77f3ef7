/* Shim configuration from VRAMSPY_* environment variables, and the small pure helpers it needs
 * (size parsing, output path patterns). Pure functions over a getter, so tests need no process
 * environment. Documented in README.md ("Environment"). */
#ifndef VSP_CONFIG_H
#define VSP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define VSP_DEFAULT_OUT "vramspy.%e.%p.trace"
#define VSP_DEFAULT_DEPTH 64u
#define VSP_MAX_DEPTH 256u
#define VSP_DEFAULT_RING (4u << 20)
#define VSP_MIN_RING (64u << 10)
#define VSP_MAX_RING (1u << 30)
#define VSP_PATH_MAX 4096

/* VRAMSPY_ON_FULL: what a writer does when the ring is full (the ring, shim/base/ring.c, acts on it) */
enum vsp_on_full { VSP_ON_FULL_WAIT = 0, VSP_ON_FULL_DROP = 1 };

/* Scalars first, strings last: parsing a zeroed (static) configuration writes only the first page
 * or two, and the strings' pages only when their variables are set (start-up, issue 22). */
struct vsp_config {
    unsigned depth;      /* frames kept per stack; 0 = no stacks */
    int quiet;           /* nothing on stderr: no exit summary, no out-of-memory breakdown */
    int summary;         /* VRAMSPY_SUMMARY (default 1): the exit summary */
    uint64_t ring_size;  /* power of two */
    int on_full;         /* enum vsp_on_full */
    int debug;           /* extra diagnostics on stderr */
    int disabled;        /* VRAMSPY_DISABLE=1: pass everything through, record nothing */
    int python;          /* VRAMSPY_PYTHON (default 1): stacks carry the Python frames (pyframes.h) */
    unsigned metrics_interval_ms;       /* VRAMSPY_METRICS_INTERVAL, default 1000 */
    int enforce_vram_only; /* VRAMSPY_ENFORCE=vram-only: host/managed allocations fail, not performed */
    int clock_coarse;    /* VRAMSPY_CLOCK=coarse: event times at the kernel's tick (base/clock.h) */
    int secure;          /* AT_SECURE process: nothing read, nothing created, every call passed through */
    char out_bad[160];   /* a rejected VRAMSPY_OUT (shortened), for the trace writer's warning; "" if none */
    char out_pattern[VSP_PATH_MAX];     /* VRAMSPY_OUT; "" (a fresh parse without it): VSP_DEFAULT_OUT */
    char metrics_pattern[VSP_PATH_MAX]; /* VRAMSPY_METRICS, "" when off */
    char purposes_path[VSP_PATH_MAX];   /* VRAMSPY_PURPOSES, "" when off */
};

typedef char *(*vsp_getenv_fn)(const char *name);

/* Fill *c from the environment (get == NULL: defaults only). Bad values fall back to defaults; each is described in `warn`
 * (one line each, truncated to warnlen). Returns the number of bad values. */
int vsp_config_parse(struct vsp_config *c, vsp_getenv_fn get, char *warn, size_t warnlen);

/* The shim's configuration for a process: vsp_config_parse, except that an AT_SECURE process
 * (at_secure != 0: setuid, setgid, file capabilities) reads no variable at all (`get` is never
 * called) and gets disabled = secure = 1. */
int vsp_config_load(struct vsp_config *c, vsp_getenv_fn get, int at_secure, char *warn, size_t warnlen);

/* The same into a configuration that is all zero (static storage never written): fields at their
 * zero value are left unwritten, and out_pattern stays "" for the default (vsp_config_out). */
int vsp_config_load_fresh(struct vsp_config *c, vsp_getenv_fn get, int at_secure, char *warn, size_t warnlen);

/* The trace path pattern: VRAMSPY_OUT, or the default. */
static inline const char *vsp_config_out(const struct vsp_config *c)
{
    return c->out_pattern[0] ? c->out_pattern : VSP_DEFAULT_OUT;
}

/* "64", "64K", "64KiB", "8M", "8MB", "1G"... (K/M/G and KiB/MiB/GiB are powers of 1024,
 * KB/MB/GB powers of 1000). 0 or -EINVAL / -ERANGE. */
int vsp_parse_size(const char *s, uint64_t *out);

/* Expand %p (pid), %e (executable base name) and %% into out. 0, -ENAMETOOLONG or -EINVAL
 * (a % followed by anything else or nothing). */
int vsp_expand_pattern(const char *pattern, long pid, const char *exe, char *out, size_t outlen);

#endif
