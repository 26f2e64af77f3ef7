/* Live metrics for fleets (VRAMSPY_METRICS=PATH): a Prometheus text-format file, replaced
 * atomically (write a temporary file beside it, then rename) at most every
 * VRAMSPY_METRICS_INTERVAL milliseconds and at exit, for node_exporter's textfile collector. No
 * server in the host process: one background thread, started with the trace (first CUDA call),
 * all signals blocked, reading the shim's relaxed counters.
 * Must never: run before the first CUDA call, or write anywhere but PATH and PATH.tmp.PID. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/inproc/inproc.h"
#include "shim/walk/walker.h"

static int started;
static char path[VSP_PATH_MAX];
static char exe[256];

static void label_escape(char *dst, size_t len, const char *src)
{
    size_t n = 0;
    for (; *src && n + 3 < len; src++) {
        if (*src == '"' || *src == '\\')
            dst[n++] = '\\';
        dst[n++] = *src == '\n' ? ' ' : *src;
    }
    dst[n] = 0;
}

/* The writer's spin flag; `done` once the exit-time snapshot is written. */
static int wlock, done, warned;

static int lock_writer(int final)
{
    if (final)
        vsp_spin_lock(&wlock);
    else if (!vsp_spin_trylock(&wlock))
        return 0; /* the thread skips a turn rather than wait */
    if (done) {
        vsp_spin_unlock(&wlock);
        return 0;
    }
    return 1;
}

static void unlock_writer(void)
{
    vsp_spin_unlock(&wlock);
}

static void write_snapshot(int final)
{
    if (!vsp_load_acquire(&started))
        return;
    char buf[16384]; /* on the stack: the writer thread has 256 KiB, the exit path the caller's */
    struct vsp_counters snap;
    vsp_live_counters(&vsp_live, &snap);
    const struct vsp_counters *c = &snap;
    char lbl[600];
    snprintf(lbl, sizeof lbl, "pid=\"%d\",executable=\"%s\"", (int)getpid(), exe);
    size_t n = 0;
#define OUT(...)                                                                    \
    do {                                                                            \
        int w_ = snprintf(buf + n, sizeof buf - n, __VA_ARGS__);                    \
        if (w_ > 0)                                                                 \
            n = n + (size_t)w_ < sizeof buf ? n + (size_t)w_ : sizeof buf - 1;      \
    } while (0)
    OUT("# HELP vramspy_live_bytes Bytes currently allocated, by memory kind.\n# TYPE vramspy_live_bytes gauge\n");
    for (int m = 1; m < VSP_MEM_COUNT_; m++)
        if (m != VSP_MEM_MAPPING)
            OUT("vramspy_live_bytes{%s,memory=\"%s\"} %llu\n", lbl, vsp_memory_name((unsigned)m),
                vsp_load_relaxed(&c->live_bytes[m]));
    OUT("# HELP vramspy_peak_bytes Most bytes allocated at once, by memory kind.\n# TYPE vramspy_peak_bytes gauge\n");
    for (int m = 1; m < VSP_MEM_COUNT_; m++)
        if (m != VSP_MEM_MAPPING)
            OUT("vramspy_peak_bytes{%s,memory=\"%s\"} %llu\n", lbl, vsp_memory_name((unsigned)m),
                vsp_load_relaxed(&c->peak_bytes[m]));
    OUT("# HELP vramspy_allocations_total Successful allocation calls, by API.\n"
        "# TYPE vramspy_allocations_total counter\n");
    for (int a = 1; a < VSP_API_COUNT_; a++) {
        unsigned long long v = vsp_load_relaxed(&c->by_api[a]);
        if (v)
            OUT("vramspy_allocations_total{%s,api=\"%s\"} %llu\n", lbl, vsp_api_name((unsigned)a), v);
    }
    OUT("# HELP vramspy_failed_allocations_total Allocation calls that returned an error.\n"
        "# TYPE vramspy_failed_allocations_total counter\nvramspy_failed_allocations_total{%s} %llu\n",
        lbl, vsp_load_relaxed(&c->failed));
    OUT("# HELP vramspy_host_fallback_total Allocations of managed or pinned/mapped/registered host memory.\n"
        "# TYPE vramspy_host_fallback_total counter\nvramspy_host_fallback_total{%s} %llu\n",
        lbl, vsp_load_relaxed(&c->host_allocations));
    struct vsp_walker_stats ws;
    vsp_walker_get_stats(&ws);
    OUT("# HELP vramspy_stack_frames_total Frames the stack walks looked up in the unwind-rule cache.\n"
        "# TYPE vramspy_stack_frames_total counter\nvramspy_stack_frames_total{%s} %llu\n"
        "# HELP vramspy_unwind_rules_computed_total Frames whose unwind rule was not in the cache (read from the "
        "unwind tables).\n# TYPE vramspy_unwind_rules_computed_total counter\nvramspy_unwind_rules_computed_total{%s} %llu\n"
        "# HELP vramspy_stack_frames_replayed_total Frames of stack walks replayed from the thread's last walk "
        "(unchanged on the stack: not looked up).\n# TYPE vramspy_stack_frames_replayed_total counter\n"
        "vramspy_stack_frames_replayed_total{%s} %llu\n",
        lbl, ws.lookups, lbl, ws.rule_misses, lbl, ws.replayed);
#undef OUT
    char tmp[VSP_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    /* One writer at a time (the thread or the exit path); after the exit-time write the thread
     * never replaces the file with an older snapshot. */
    if (!lock_writer(final))
        return;
    int fd = vsp_fd_above_stdio(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    int err = errno;
    ssize_t w = fd >= 0 ? write(fd, buf, n) : -1;
    if (fd >= 0) {
        err = errno;
        close(fd);
    }
    int ok = fd >= 0 && w == (ssize_t)n;
    if (ok && rename(tmp, path) < 0) {
        err = errno;
        ok = 0;
    }
    if (!ok) {
        if (fd >= 0)
            unlink(tmp);
        if (!warned) { /* once: the file is retried every interval */
            warned = 1;
            vsp_warn("VRAMSPY_METRICS: cannot write %s: %s; retrying every %u ms", path, strerror(err),
                     vsp_cfg.metrics_interval_ms);
        }
    }
    if (final)
        done = 1;
    unlock_writer();
}

void vsp_metrics_write(void)
{
    write_snapshot(1);
}

static void *writer(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {vsp_cfg.metrics_interval_ms / 1000, (long)(vsp_cfg.metrics_interval_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        if (!vsp_load_acquire(&started))
            return NULL; /* forked child: this thread is the parent's copy... it does not exist here */
        write_snapshot(0);
        if (vsp_trace_ensure())
            vsp_usage_sample(VSP_USAGE_PERIODIC); /* NVML answers without a context; the device
                                                     source needs one, so it may be skipped here */
    }
}

void vsp_metrics_start(void)
{
    if (!vsp_cfg.metrics_pattern[0] || vsp_load_relaxed(&started))
        return;
    char buf[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[l > 0 ? l : 0] = 0;
    const char *base = strrchr(buf, '/');
    label_escape(exe, sizeof exe, base ? base + 1 : buf);
    char rel[VSP_PATH_MAX];
    if (vsp_expand_pattern(vsp_cfg.metrics_pattern, (long)getpid(), base ? base + 1 : buf, rel, sizeof rel) < 0)
        return;
    /* absolute now, like the trace path: the program may chdir later */
    char cwd[PATH_MAX];
    size_t lc, lr = strlen(rel);
    if (rel[0] != '/' && getcwd(cwd, sizeof cwd) && (lc = strlen(cwd)) + lr + 2 <= sizeof path) {
        memcpy(path, cwd, lc);
        path[lc] = '/';
        memcpy(path + lc + 1, rel, lr + 1);
    } else
        snprintf(path, sizeof path, "%s", rel);
    /* release: path and exe are set before the thread (or the exit path) reads them */
    vsp_store_release(&started, 1);
    write_snapshot(0);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits: no host signal lands on it */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, writer, NULL) != 0)
        vsp_warn("cannot start the metrics thread; %s is written at exit only", path);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void vsp_metrics_atfork_child(void)
{
    /* the writer thread is not in the child; the child starts its own with its trace */
    started = 0;
    wlock = done = warned = 0;
}
