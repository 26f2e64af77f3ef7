/* --job (see job.h): the processes of one job as one document. Every process is placed on one
 * time axis by its trace's wall-clock anchor (header start_realtime_ns taken with
 * start_monotonic_ns), so traces of several hosts line up; devices are told apart by host and
 * ordinal; a finding that several processes share (same kind, API and call site) is one finding
 * with the pids it occurs in. Built from the per-process vramspy-report/1 documents, so a job's
 * findings read exactly as each process's do. */
#include "report/out/job.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shim/common/human.h"
#include "report/out/output.h"
#include "report/analyze/plan.h"

/* Wall-clock time of a CLOCK_MONOTONIC time of the process (0 anchors: the time itself). */
static uint64_t wall(const struct vsp_analysis *a, uint64_t t)
{
    if (!a->start_realtime_ns || !a->start_monotonic_ns)
        return t;
    return a->start_realtime_ns + t - a->start_monotonic_ns;
}

/* When a process ended, on the wall clock (never before it began: vsp_analysis_start_key). */
static uint64_t proc_end(const struct vsp_analysis *a)
{
    uint64_t e = wall(a, vsp_analysis_end_ns(a)), s = vsp_analysis_start_key(a);
    return e > s ? e : s;
}

static const struct vsp_job_proc *g_sort;
static int by_rank(const void *x, const void *y)
{
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    const struct vsp_analysis *a = g_sort[i].a, *b = g_sort[j].a;
    int64_t ra = a->rank >= 0 ? a->rank : INT32_MAX, rb = b->rank >= 0 ? b->rank : INT32_MAX;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    uint64_t sa = vsp_analysis_start_key(a), sb = vsp_analysis_start_key(b);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* The processes' indices by rank, then start (a new array, NULL when out of memory). */
static size_t *job_order(const struct vsp_job_proc *p, size_t n)
{
    size_t *order = calloc(n ? n : 1, sizeof *order);
    if (!order)
        return NULL;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    g_sort = p;
    qsort(order, n, sizeof *order, by_rank);
    return order;
}

int vsp_job_same_process(const struct vsp_analysis *a, const struct vsp_analysis *b)
{
    if (a->pid != b->pid || strcmp(a->host ? a->host : "", b->host ? b->host : ""))
        return 0;
    /* the header's clocks at the trace's start: the boot (realtime - monotonic) and the start
     * itself, to the nanosecond; without them (0) nothing tells, so they are not the same */
    if (!a->start_realtime_ns || !a->start_monotonic_ns)
        return 0;
    return a->start_realtime_ns == b->start_realtime_ns && a->start_monotonic_ns == b->start_monotonic_ns;
}

static json_t *int_or_null(int32_t v) { return v >= 0 ? json_integer(v) : json_null(); }

static uint64_t sample_device_bytes(const struct vsp_sample *s)
{
    uint64_t b = 0;
    for (unsigned k = 0; k < VSP_MEM_COUNT_; k++)
        if (vsp_memory_is_device(k))
            b += s->bytes[k];
    return b;
}

struct point {
    uint64_t t;
    size_t proc;
    uint64_t v;
};

static int by_time(const void *x, const void *y)
{
    const struct point *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->proc < b->proc ? -1 : a->proc > b->proc;
}

/* The most device memory the processes held at once on one device: their timelines on the
 * shared axis, summed (each point the most its span held, so this errs high, never low). A
 * process using several devices adds its own peak on each. */
static uint64_t group_peak(const struct vsp_job_proc *p, size_t n, const char *host, int32_t device)
{
    size_t np = 0, cap = 0;
    struct point *pts = NULL;
    uint64_t fixed = 0;
    for (size_t i = 0; i < n; i++) {
        const struct vsp_analysis *a = p[i].a;
        const char *h = a->host ? a->host : "";
        if (strcmp(h, host))
            continue;
        const struct vsp_device_row *row = NULL;
        for (size_t d = 0; d < a->ndevices; d++)
            if (a->devices[d].device == device)
                row = &a->devices[d];
        if (!row)
            continue;
        if (a->ndevices != 1 || !a->nsamples) {
            fixed += row->peak_bytes;
            continue;
        }
        if (np + a->nsamples + 1 > cap) {
            cap = (np + a->nsamples + 1) * 2;
            struct point *g = realloc(pts, cap * sizeof *g);
            if (!g) {
                free(pts);
                return fixed + row->peak_bytes;
            }
            pts = g;
        }
        for (size_t s = 0; s < a->nsamples; s++)
            pts[np++] = (struct point){wall(a, a->samples[s].t0), i, sample_device_bytes(&a->samples[s])};
        pts[np++] = (struct point){proc_end(a) + 1, i, 0}; /* gone: its memory with it */
    }
    uint64_t *cur = calloc(n ? n : 1, sizeof *cur), sum = 0, best = 0;
    if (np)
        qsort(pts, np, sizeof *pts, by_time);
    for (size_t k = 0; cur && k < np; k++) {
        sum = sum - cur[pts[k].proc] + pts[k].v;
        cur[pts[k].proc] = pts[k].v;
        if (k + 1 < np && pts[k + 1].t == pts[k].t)
            continue; /* same instant: sum once all of it is in */
        if (sum > best)
            best = sum;
    }
    free(cur);
    free(pts);
    return best + fixed;
}

/* What makes two processes' findings the same finding: kind, API, memory, the plan's purpose and
 * the call site (the stack's frames by function, else module and offset: the same binary in every
 * rank has the same offsets whatever the load address). */
static char *finding_key(json_t *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    const char *fields[] = {"kind", "api", "memory", "purpose", "reason", "held_by"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(f, fields[i]);
        fprintf(m, "%s|", json_is_string(v) ? json_string_value(v) : "");
    }
    json_t *st = json_object_get(f, "stack"), *fr;
    size_t i;
    json_array_foreach(st, i, fr) {
        if (i >= 8)
            break;
        json_t *fn = json_object_get(fr, "function"), *mod = json_object_get(fr, "module"),
               *off = json_object_get(fr, "offset");
        if (json_is_string(fn)) {
            fprintf(m, "%s;", json_string_value(fn));
        } else {
            const char *ms = json_is_string(mod) ? json_string_value(mod) : "?";
            const char *b = strrchr(ms, '/');
            fprintf(m, "%s+%s;", b ? b + 1 : ms, json_is_string(off) ? json_string_value(off) : "?");
        }
    }
    fclose(m);
    return buf;
}

static void add_int(json_t *into, json_t *from, const char *key)
{
    json_t *a = json_object_get(into, key), *b = json_object_get(from, key);
    if (json_is_integer(a) && json_is_integer(b))
        json_object_set_new(into, key, json_integer(json_integer_value(a) + json_integer_value(b)));
}

/* A merged finding's entry for one process: which (its index in "processes", pid, rank, host) and
 * its own numbers, which the merged finding sums (count, bytes) or shows as a range (the rest). */
static json_t *process_numbers(const struct vsp_analysis *a, size_t index, json_t *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "process", json_integer((json_int_t)index));
    json_object_set_new(o, "pid", json_integer(a->pid));
    json_object_set_new(o, "rank", int_or_null(a->rank));
    json_object_set_new(o, "host", vsp_json_text(a->host));
    static const char *const nums[] = {"count", "bytes", "measured_bytes", "planned_bytes", "requested", "deviation"};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        json_t *v = json_object_get(f, nums[i]);
        if (json_is_number(v))
            json_object_set(o, nums[i], v);
    }
    return o;
}

static int kind_index(json_t *f)
{
    const char *k = json_string_value(json_object_get(f, "kind"));
    for (int i = 0; k && i < VSP_F_COUNT_; i++)
        if (!strcmp(k, vsp_finding_json_name(i)))
            return i;
    return VSP_F_COUNT_;
}

static int by_kind(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int ka = kind_index(a), kb = kind_index(b);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    size_t pa = json_array_size(json_object_get(a, "pids")), pb = json_array_size(json_object_get(b, "pids"));
    return pa > pb ? -1 : pa < pb;
}

json_t *vsp_job_json(const struct vsp_job_proc *p, size_t n)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "schema", json_string("vramspy-job/1"));
    size_t *order = job_order(p, n);
    const char **hosts = calloc(n ? n : 1, sizeof *hosts);
    if (!order || !hosts) {
        free(order);
        free(hosts);
        return doc;
    }
    uint64_t t0 = UINT64_MAX, t1 = 0;
    for (size_t i = 0; i < n; i++) {
        if (vsp_analysis_start_key(p[i].a) < t0)
            t0 = vsp_analysis_start_key(p[i].a);
        if (proc_end(p[i].a) > t1)
            t1 = proc_end(p[i].a);
    }
    if (!n)
        t0 = 0;
    json_t *time = json_object();
    json_object_set_new(time, "start_realtime_ns", json_integer((json_int_t)t0));
    json_object_set_new(time, "end_realtime_ns", json_integer((json_int_t)t1));
    json_object_set_new(time, "duration_ns", json_integer((json_int_t)(t1 - t0)));
    json_object_set_new(doc, "time", time);
    /* processes, by rank then start */
    json_t *procs = json_array();
    size_t nhosts = 0;
    for (size_t k = 0; k < n; k++) {
        const struct vsp_job_proc *q = &p[order[k]];
        const struct vsp_analysis *a = q->a;
        json_t *o = json_object();
        json_object_set_new(o, "pid", json_integer(a->pid));
        json_object_set_new(o, "ppid", json_integer(a->ppid));
        json_object_set_new(o, "host", vsp_json_text(a->host));
        json_object_set_new(o, "rank", int_or_null(a->rank));
        json_object_set_new(o, "local_rank", int_or_null(a->local_rank));
        json_object_set_new(o, "world_size", int_or_null(a->world_size));
        json_t *devs = json_array();
        for (size_t d = 0; d < a->ndevices; d++)
            json_array_append_new(devs, a->devices[d].device >= 0 ? json_integer(a->devices[d].device) : json_null());
        json_object_set_new(o, "devices", devs);
        json_object_set_new(o, "exe", vsp_json_text(a->exe));
        json_t *argv = json_array();
        for (int i = 0; i < a->argc; i++)
            json_array_append_new(argv, vsp_json_text(a->argv[i] ? a->argv[i] : ""));
        json_object_set_new(o, "argv", argv);
        char *cmd = vsp_command_line(a);
        json_object_set_new(o, "command_line", vsp_json_text(cmd ? cmd : "?"));
        free(cmd);
        json_object_set_new(o, "trace", vsp_json_text(q->path));
        json_object_set_new(o, "complete", json_boolean(a->complete));
        json_object_set_new(o, "in_progress", json_boolean(a->in_progress));
        json_object_set_new(o, "start_realtime_ns", json_integer((json_int_t)vsp_analysis_start_key(a)));
        json_object_set_new(o, "start_ns", json_integer((json_int_t)(vsp_analysis_start_key(a) - t0)));
        json_object_set_new(o, "end_ns", json_integer((json_int_t)(proc_end(a) - t0)));
        json_object_set_new(o, "peak_ns", a->peak_bytes ? json_integer((json_int_t)(wall(a, a->peak_time_ns) - t0))
                                                        : json_null());
        json_t *tot = json_object_get(q->report, "totals");
        json_object_set_new(o, "totals", tot ? json_deep_copy(tot) : json_object());
        json_object_set_new(o, "findings", json_integer((json_int_t)json_array_size(json_object_get(q->report,
                                                                                                       "findings"))));
        json_t *plan = json_object_get(q->report, "plan");
        if (plan)
            json_object_set(o, "plan", plan);
        json_array_append_new(procs, o);
        const char *h = a->host ? a->host : "";
        size_t hi = 0;
        while (hi < nhosts && strcmp(hosts[hi], h))
            hi++;
        if (hi == nhosts)
            hosts[nhosts++] = h;
    }
    json_object_set_new(doc, "processes", procs);
    /* devices: by host and ordinal, across processes */
    json_t *devices = json_array();
    for (size_t k = 0; k < n; k++) {
        const struct vsp_analysis *a = p[order[k]].a;
        const char *h = a->host ? a->host : "";
        for (size_t d = 0; d < a->ndevices; d++) {
            int32_t dev = a->devices[d].device;
            int seen = 0;
            for (size_t j = 0; j < k && !seen; j++) {
                const struct vsp_analysis *b = p[order[j]].a;
                if (strcmp(b->host ? b->host : "", h))
                    continue;
                for (size_t e = 0; e < b->ndevices; e++)
                    seen |= b->devices[e].device == dev;
            }
            if (seen)
                continue;
            json_t *o = json_object(), *pids = json_array(), *ranks = json_array();
            uint64_t live = 0;
            for (size_t j = k; j < n; j++) {
                const struct vsp_analysis *b = p[order[j]].a;
                if (strcmp(b->host ? b->host : "", h))
                    continue;
                for (size_t e = 0; e < b->ndevices; e++)
                    if (b->devices[e].device == dev) {
                        live += b->devices[e].live_bytes;
                        json_array_append_new(pids, json_integer(b->pid));
                        if (b->rank >= 0)
                            json_array_append_new(ranks, json_integer(b->rank));
                    }
            }
            json_object_set_new(o, "host", vsp_json_text(a->host));
            json_object_set_new(o, "device", dev >= 0 ? json_integer(dev) : json_null());
            json_object_set_new(o, "peak_bytes", json_integer((json_int_t)group_peak(p, n, h, dev)));
            json_object_set_new(o, "live_bytes", json_integer((json_int_t)live));
            json_object_set_new(o, "pids", pids);
            json_object_set_new(o, "ranks", ranks);
            json_array_append_new(devices, o);
        }
    }
    json_object_set_new(doc, "devices", devices);
    /* findings, merged */
    size_t nm = 0, capm = 16;
    json_t **merged = calloc(capm, sizeof *merged);
    char **keys = calloc(capm, sizeof *keys);
    size_t *last = calloc(capm, sizeof *last); /* per merged finding: 1 + the last process (k) in it */
    for (size_t k = 0; merged && keys && last && k < n; k++) {
        const struct vsp_analysis *a = p[order[k]].a;
        json_t *fs = json_object_get(p[order[k]].report, "findings"), *f;
        size_t i;
        json_array_foreach(fs, i, f) {
            char *key = finding_key(f);
            size_t m = 0;
            while (key && m < nm && strcmp(keys[m], key))
                m++;
            if (!key || m == nm) {
                if (nm == capm) {
                    json_t **gm = realloc(merged, 2 * capm * sizeof *gm);
                    char **gk = gm ? realloc(keys, 2 * capm * sizeof *gk) : NULL;
                    size_t *gl = gk ? realloc(last, 2 * capm * sizeof *gl) : NULL;
                    if (gm)
                        merged = gm;
                    if (gk)
                        keys = gk;
                    if (!gl) {
                        free(key);
                        break;
                    }
                    last = gl;
                    capm *= 2;
                }
                json_t *c = json_deep_copy(f);
                json_object_set_new(c, "pids", json_array());
                json_object_set_new(c, "ranks", json_array());
                json_object_set_new(c, "by_process", json_array());
                last[nm] = 0;
                merged[nm] = c;
                keys[nm++] = key ? key : strdup("");
            } else {
                free(key);
                add_int(merged[m], f, "count");
                add_int(merged[m], f, "bytes");
                if (json_is_true(json_object_get(f, "uncertain")))
                    json_object_set_new(merged[m], "uncertain", json_true());
            }
            /* a process is one trace (two ranks of one pid on two hosts are two), not a pid */
            json_t *byp = json_object_get(merged[m], "by_process");
            if (last[m] != k + 1) {
                last[m] = k + 1;
                json_array_append_new(json_object_get(merged[m], "pids"), json_integer(a->pid));
                if (a->rank >= 0)
                    json_array_append_new(json_object_get(merged[m], "ranks"), json_integer(a->rank));
                json_array_append_new(byp, process_numbers(a, k, f));
            } else {
                json_t *own = json_array_get(byp, json_array_size(byp) - 1);
                add_int(own, f, "count");
                add_int(own, f, "bytes");
            }
        }
    }
    if (nm)
        qsort(merged, nm, sizeof *merged, by_kind);
    json_t *findings = json_array();
    json_t *by = json_object();
    for (size_t m = 0; m < nm; m++) {
        const char *kind = json_string_value(json_object_get(merged[m], "kind"));
        json_t *c = json_object_get(by, kind ? kind : "?");
        json_object_set_new(by, kind ? kind : "?", json_integer(c ? json_integer_value(c) + 1 : 1));
        json_array_append_new(findings, merged[m]);
        free(keys[m]);
    }
    free(merged);
    free(keys);
    free(last);
    json_object_set_new(doc, "findings", findings);
    json_t *sum = json_object();
    json_object_set_new(sum, "processes", json_integer((json_int_t)n));
    json_object_set_new(sum, "hosts", json_integer((json_int_t)nhosts));
    json_object_set_new(sum, "devices", json_integer((json_int_t)json_array_size(devices)));
    json_object_set_new(sum, "findings", by);
    json_object_set_new(doc, "summary", sum);
    free(hosts);
    free(order);
    return doc;
}

static void ints(char *buf, size_t len, json_t *arr)
{
    size_t i, off = 0;
    json_t *v;
    buf[0] = 0;
    json_array_foreach(arr, i, v) {
        int w = snprintf(buf + off, len - off, "%s%" JSON_INTEGER_FORMAT, i ? "," : "", json_integer_value(v));
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

/* An integer, or `none` when v is not one (null: not known). */
static void int_or(char *buf, size_t len, json_t *v, const char *none)
{
    if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(buf, len, "%s", none);
}

static uint64_t jbytes(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

/* A hex string of the report's JSON ("0x5b45ee") as a number; 0 when absent. */
static uint64_t jhex(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? strtoull(json_string_value(v), NULL, 16) : 0;
}

/* A number of a merged finding as its processes had it: "192.0 MiB", or "192.0 MiB to 256.0 MiB"
 * when they differ (from its by_process entries; the finding's own value when it has none). */
static void range_bytes(char *buf, size_t len, json_t *f, const char *key)
{
    json_t *byp = json_object_get(f, "by_process"), *e;
    size_t i;
    uint64_t lo = UINT64_MAX, hi = 0;
    json_array_foreach(byp, i, e) {
        uint64_t v = jbytes(e, key);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (lo == UINT64_MAX)
        lo = hi = jbytes(f, key);
    char l[32], h[32];
    vsp_human_bytes(l, sizeof l, lo);
    vsp_human_bytes(h, sizeof h, hi);
    if (lo == hi)
        snprintf(buf, len, "%s", l);
    else
        snprintf(buf, len, "%s to %s", l, h);
}

/* "function <- caller" of a finding's stack (two frames), or "": each frame named as the
 * single-process report names it (vsp_frame_label: the function, else module+offset such as
 * libcublas.so.13+0x5b45ee, else the address), with (file:line) after a function whose line is known */
static void site(char *buf, size_t len, json_t *f)
{
    json_t *st = json_object_get(f, "stack"), *fr;
    size_t i, off = 0;
    buf[0] = 0;
    size_t shown = 0;
    json_array_foreach(st, i, fr) {
        json_t *fn = json_object_get(fr, "function"), *file = json_object_get(fr, "file"),
               *line = json_object_get(fr, "line"), *mod = json_object_get(fr, "module");
        if (shown >= 2 || (json_is_string(fn) && vsp_startup_function(json_string_value(fn))))
            break; /* libc's start-up frames say nothing about the site */
        struct vsp_frame_info fi = {.address = jhex(fr, "address"), .offset = jhex(fr, "offset"),
                                    .module = json_is_string(mod) ? json_string_value(mod) : NULL};
        if (json_is_string(fn))
            snprintf(fi.function, sizeof fi.function, "%s", json_string_value(fn));
        char label[sizeof fi.function + 64];
        vsp_frame_label(&fi, label, sizeof label);
        const char *sep = shown++ ? " <- " : "";
        int w;
        if (fi.function[0] && json_is_string(file)) {
            const char *fname = json_string_value(file), *slash = strrchr(fname, '/');
            w = snprintf(buf + off, len - off, "%s%s (%s:%" JSON_INTEGER_FORMAT ")", sep, label,
                         slash ? slash + 1 : fname, json_integer_value(line));
        } else {
            w = snprintf(buf + off, len - off, "%s%s", sep, label);
        }
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

void vsp_job_text(FILE *out, const struct vsp_job_proc *p, size_t n, int color)
{
    json_t *doc = vsp_job_json(p, n);
    json_t *sum = json_object_get(doc, "summary"), *procs = json_object_get(doc, "processes"),
           *devs = json_object_get(doc, "devices"), *fs = json_object_get(doc, "findings"), *o;
    const char *b0 = color ? "\033[1m" : "", *b1 = color ? "\033[0m" : "";
    char h1[32], h2[32], list[256];
    double secs = (double)jbytes(json_object_get(doc, "time"), "duration_ns") / 1e9;
    fprintf(out, "%svramspy job:%s %zu process%s on %" JSON_INTEGER_FORMAT " host%s, %zu device%s, %.3f s on one "
                 "time axis (wall clock)\n", b0, b1, n, n == 1 ? "" : "es",
            json_integer_value(json_object_get(sum, "hosts")),
            json_integer_value(json_object_get(sum, "hosts")) == 1 ? "" : "s", json_array_size(devs),
            json_array_size(devs) == 1 ? "" : "s", secs);
    fprintf(out, "\nby rank:\n  %-5s %-8s %-16s %-8s %10s %12s %8s  %s\n", "rank", "pid", "host", "devices",
            "peak", "live at end", "findings", "command");
    size_t i;
    json_array_foreach(procs, i, o) {
        json_t *tot = json_object_get(o, "totals"), *rank = json_object_get(o, "rank");
        char r[16];
        int_or(r, sizeof r, rank, "-");
        vsp_human_bytes(h1, sizeof h1, jbytes(tot, "peak_bytes"));
        vsp_human_bytes(h2, sizeof h2, jbytes(tot, "live_bytes"));
        ints(list, sizeof list, json_object_get(o, "devices"));
        json_t *host = json_object_get(o, "host");
        /* names as text: control characters as \xNN (the JSON strings may hold them) */
        char *he = vsp_escape_bytes(json_is_string(host) ? json_string_value(host) : "?", 1),
             *ce = vsp_escape_bytes(json_string_value(json_object_get(o, "command_line")), 1);
        fprintf(out, "  %-5s %-8" JSON_INTEGER_FORMAT " %-16s %-8s %10s %12s %8" JSON_INTEGER_FORMAT "  %s\n", r,
                json_integer_value(json_object_get(o, "pid")), he ? he : "?", list[0] ? list : "-", h1, h2,
                json_integer_value(json_object_get(o, "findings")), ce ? ce : "?");
        free(he);
        free(ce);
    }
    fprintf(out, "\nby device (all its processes together):\n  %-16s %-7s %10s %12s  %s\n", "host", "device", "peak",
            "live at end", "ranks (pids)");
    json_array_foreach(devs, i, o) {
        json_t *host = json_object_get(o, "host"), *dev = json_object_get(o, "device");
        char d[16], pids[256];
        int_or(d, sizeof d, dev, "?");
        vsp_human_bytes(h1, sizeof h1, jbytes(o, "peak_bytes"));
        vsp_human_bytes(h2, sizeof h2, jbytes(o, "live_bytes"));
        ints(list, sizeof list, json_object_get(o, "ranks"));
        ints(pids, sizeof pids, json_object_get(o, "pids"));
        char *he = vsp_escape_bytes(json_is_string(host) ? json_string_value(host) : "?", 1);
        fprintf(out, "  %-16s %-7s %10s %12s  %s (%s)\n", he ? he : "?", d, h1, h2, list[0] ? list : "-", pids);
        free(he);
    }
    fprintf(out, "\nfindings, merged across processes:%s\n", json_array_size(fs) ? "" : " none");
    json_array_foreach(fs, i, o) {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        char where[600], what[400] = "";
        site(where, sizeof where, o);
        size_t np = json_array_size(json_object_get(o, "pids"));
        char r1[80], r2[80];
        if (json_is_string(json_object_get(o, "purpose"))) {
            range_bytes(r1, sizeof r1, o, "measured_bytes");
            range_bytes(r2, sizeof r2, o, "planned_bytes");
            snprintf(what, sizeof what, "%s measured %s against %s planned",
                     json_string_value(json_object_get(o, "purpose")), r1, r2);
        } else if (json_is_integer(json_object_get(o, "bytes"))) {
            vsp_human_bytes(h1, sizeof h1, jbytes(o, "bytes"));
            const char *by = json_string_value(json_object_get(o, "held_by"));
            snprintf(what, sizeof what, "%s in %" JSON_INTEGER_FORMAT " call%s by %s%s%s", h1,
                     json_integer_value(json_object_get(o, "count")),
                     json_integer_value(json_object_get(o, "count")) == 1 ? "" : "s",
                     json_string_value(json_object_get(o, "api")), by ? ", held until exit by the " : "",
                     by ? by : "");
        } else if (json_is_integer(json_object_get(o, "requested"))) {
            range_bytes(r1, sizeof r1, o, "requested");
            snprintf(what, sizeof what, "%s of %s failed %" JSON_INTEGER_FORMAT " time%s",
                     json_string_value(json_object_get(o, "api")), r1, json_integer_value(json_object_get(o, "count")),
                     json_integer_value(json_object_get(o, "count")) == 1 ? "" : "s");
        } else {
            snprintf(what, sizeof what, "by %s", json_string_value(json_object_get(o, "api")));
        }
        ints(list, sizeof list, json_object_get(o, "ranks"));
        char *we = vsp_escape_bytes(where, 1);
        fprintf(out, "  %s%s%s %s%s%s: in %zu of %zu process%s%s%s%s%s\n", b0, kind ? kind : "?", b1, what,
                where[0] ? " at " : "", we ? we : where, np, n, n == 1 ? "" : "es", list[0] ? " (ranks " : "", list,
                list[0] ? ")" : "", json_is_true(json_object_get(o, "uncertain")) ? " (uncertain)" : "");
        free(we);
    }
    /* the plans, in rank order: each process's own (two processes may share a pid) */
    size_t *order = job_order(p, n);
    for (size_t k = 0; order && k < n; k++) {
        const struct vsp_analysis *a = p[order[k]].a;
        if (!a->plan)
            continue;
        char *he = vsp_escape_bytes(a->host ? a->host : "", 1);
        if (a->rank >= 0)
            fprintf(out, "\nrank %d (pid %u%s%s):", a->rank, a->pid, a->host ? " on " : "", he ? he : "");
        else
            fprintf(out, "\npid %u%s%s:", a->pid, a->host ? " on " : "", he ? he : "");
        free(he);
        vsp_plan_text(out, a->plan);
    }
    free(order);
    json_decref(doc);
}
