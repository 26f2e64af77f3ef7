/* Renderings for people and tools (see formats.h): folded stacks, Chrome trace-event JSON, the SVG
 * timeline and JUnit XML. The SVG and JUnit writers keep what they need of each trace until their
 * end function, because both need every trace before they can write the first (one shared time
 * axis; names that tell processes apart). They never keep a whole analysis, and never write a pid
 * into a name a CI compares across runs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream, asprintf */
#endif
#include "report/out/formats.h"
#include "report/out/output.h"
#include "report/analyze/plan.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INLINE 16

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one XML may carry (U+FFFE
 * and U+FFFF are not characters to XML). */
static int utf8_len(const unsigned char *s)
{
    int n = vsp_utf8_seq(s);
    if (n == 3 && s[0] == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf))
        return 0;
    return n;
}

/* Text and attribute values: markup escaped, and control characters (but newline and tab) and
 * bytes that are not UTF-8 (a path or an argument can be any bytes) written as \xNN, so the
 * document always parses. */
static void xml_escape(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        switch (*s) {
        case '<': fputs("&lt;", out); s++; continue;
        case '>': fputs("&gt;", out); s++; continue;
        case '&': fputs("&amp;", out); s++; continue;
        case '"': fputs("&quot;", out); s++; continue;
        case '\'': fputs("&apos;", out); s++; continue;
        default: break;
        }
        int n = utf8_len(s);
        if (!n || (*s < 0x20 && *s != '\n' && *s != '\t') || *s == 0x7f) {
            fprintf(out, "\\x%02x", *s); /* the report's one rule for bytes that are not text (output.h) */
            s++;
            continue;
        }
        fwrite(s, 1, (size_t)n, out);
        s += n;
    }
}

/* The command line (vsp_command_line), and for a job's process its rank, which names it as stably
 * as its command. */
static char *command_line(const struct vsp_analysis *a)
{
    char *cmd = vsp_command_line(a), *named;
    if (!cmd || !a->have_host || a->rank < 0 ||
        asprintf(&named, "%s [rank %d%s%s]", cmd, a->rank, a->host ? " on " : "", a->host ? a->host : "") < 0)
        return cmd;
    free(cmd);
    return named;
}

/* "SIGSEGV", or "signal 77" for one the report's table does not name (output.c: one table). */
static const char *signal_name(int sig, char *buf, size_t len)
{
    const char *n = vsp_signal_name(sig);
    if (strcmp(n, "signal"))
        snprintf(buf, len, "%s", n);
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

/* The result's name (the runtime's and the driver's enums differ), NULL when output.c's table
 * does not know it. */
static const char *result_name(uint16_t api, int32_t r)
{
    const char *n = vsp_result_name(api, r);
    return strcmp(n, "unknown") ? n : NULL;
}

/* What a crash finding or mark says; snprintf's result. */
static int crash_text(char *buf, size_t len, int sig)
{
    char name[32];
    if (sig)
        return snprintf(buf, len, "crash: the process ended by %s", signal_name(sig, name, sizeof name));
    return snprintf(buf, len, "crash: the process is gone and its trace has no end");
}

/* "PREFIX: API failed with 35 (cudaErrorInsufficientDriver), 2 calls"; snprintf's result. */
static int alloc_error_text(char *buf, size_t len, const char *prefix, uint16_t api, int32_t result, uint64_t count)
{
    const char *rn = result_name(api, result);
    return snprintf(buf, len, "%s: %s failed with %d%s%s%s, %" PRIu64 " call%s", prefix, vsp_api_name(api),
                    (int)result, rn ? " (" : "", rn ? rn : "", rn ? ")" : "", count, count == 1 ? "" : "s");
}

/* ---- folded stacks: outer;...;inner;API BYTES ---- */

static void folded_line(FILE *out, const struct vsp_analysis *a, struct vsp_symbolizer *sym, uint32_t stack_id,
                        uint16_t api, uint64_t bytes)
{
    if (!bytes)
        return;
    const struct vsp_stack *st = vsp_analysis_stack(a, stack_id);
    char line[16384];
    size_t used = 0;
    line[0] = 0;
    for (int k = st ? (int)st->nframes - 1 : -1; k >= 0; k--) {
        struct vsp_frame_info fi[MAX_INLINE];
        int n = vsp_sym_frame(sym, st, (unsigned)k, fi, MAX_INLINE);
        for (int j = n - 1; j >= 0; j--) {
            char label[600];
            vsp_frame_label(&fi[j], label, sizeof label);
            for (char *p = label; *p; p++)
                if (*p == ';' || *p == ' ')
                    *p = '_'; /* the format's separators */
            int w = snprintf(line + used, sizeof line - used, "%s;", label);
            if (w < 0 || (size_t)w >= sizeof line - used)
                break;
            used += (size_t)w;
        }
    }
    fprintf(out, "%s%s %" PRIu64 "\n", line, vsp_api_name(api), bytes);
}

void vsp_folded(FILE *out, const struct vsp_analysis *a, struct vsp_symbolizer *sym, int weigh)
{
    if (weigh == VSP_WEIGH_LEAKS) {
        for (size_t i = 0; i < a->nfindings; i++)
            if (a->findings[i].kind == VSP_F_LEAK)
                folded_line(out, a, sym, a->findings[i].stack_id, a->findings[i].api, a->findings[i].bytes);
        return;
    }
    for (size_t i = 0; i < a->nby_stack; i++) {
        const struct vsp_stack_bytes *b = &a->by_stack[i];
        folded_line(out, a, sym, b->stack_id, b->api, weigh == VSP_WEIGH_PEAK ? b->live_at_peak : b->allocated);
    }
}

/* ---- naming processes across traces (SVG panels, JUnit suites) ---- */

/* One traced process as the multi-trace writers name it: by command line, "[child]" when its
 * parent is among the traces, and "#k" for the k-th process of an identical name, in order of start
 * (the trace header's wall-clock start, else its first event): the same name on every run. */
struct proc_id {
    char *cmd;
    uint32_t pid, ppid;
    uint64_t start;
    int32_t rank;   /* -1: none */
    size_t input;   /* position among the traces given */
    char *name;     /* filled by name_processes */
};

/* Ranks first, in rank order (a job's processes: SVG panels and JUnit suites as --job lists them),
 * then by start. */
static int by_start(const void *x, const void *y)
{
    const struct proc_id *a = *(const struct proc_id *const *)x, *b = *(const struct proc_id *const *)y;
    int64_t ra = a->rank >= 0 ? a->rank : INT32_MAX, rb = b->rank >= 0 ? b->rank : INT32_MAX;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->input < b->input ? -1 : a->input > b->input;
}

/* Sorts order[] (pointers into p) by start and names each process. */
static void name_processes(struct proc_id *p, size_t n, struct proc_id **order)
{
    for (size_t i = 0; i < n; i++)
        order[i] = &p[i];
    qsort(order, n, sizeof *order, by_start);
    char **base = calloc(n ? n : 1, sizeof *base);
    for (size_t i = 0; i < n; i++) {
        struct proc_id *q = order[i];
        int child = 0;
        for (size_t j = 0; j < n; j++)
            if (p[j].pid == q->ppid && &p[j] != q)
                child = 1;
        if (asprintf(&base[i], "%s%s", q->cmd, child ? " [child]" : "") < 0)
            base[i] = strdup(q->cmd);
        int same = 0;
        for (size_t j = 0; j < i; j++)
            same += !strcmp(base[j], base[i]);
        if (!same || asprintf(&q->name, "%s #%d", base[i], same + 1) < 0)
            q->name = strdup(base[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(base[i]);
    free(base);
}

/* The input-th trace's process, named later by name_processes. */
static void proc_id_init(struct proc_id *p, const struct vsp_analysis *a, size_t input)
{
    p->cmd = command_line(a);
    p->pid = a->pid;
    p->ppid = a->ppid;
    p->rank = a->have_host ? a->rank : -1;
    p->input = input;
    p->start = vsp_analysis_start_key(a);
}

static void proc_id_free(struct proc_id *p)
{
    free(p->cmd);
    free(p->name);
}

/* ---- Chrome trace-event JSON ---- */

static const int track_kinds[] = {VSP_MEM_DEVICE, VSP_MEM_MANAGED, VSP_MEM_HOST_PINNED, VSP_MEM_HOST_MAPPED,
                                  VSP_MEM_HOST_REGISTERED, VSP_MEM_ARRAY, VSP_MEM_PHYSICAL};
#define NTRACK (sizeof track_kinds / sizeof track_kinds[0])

/* The instants worth marking on a timeline, by finding kind. */
static const char *instant_name(int kind)
{
    switch (kind) {
    case VSP_F_OOM: return "out of memory";
    case VSP_F_FRAGMENTATION: return "fragmentation";
    case VSP_F_HOST_FALLBACK: return "host fallback";
    case VSP_F_CRASH: return "crash";
    case VSP_F_ALLOC_ERROR: return "allocation error";
    default: return "event";
    }
}

void vsp_perfetto_begin(FILE *out)
{
    fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", out);
}

void vsp_perfetto_trace(FILE *out, const struct vsp_analysis *a, int first)
{
    uint64_t t0 = vsp_analysis_first_ns(a);
#define TS(t) ((double)((t) >= t0 ? (t) - t0 : 0) / 1000.0)
    fprintf(out, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"",
            first ? "" : ",\n", a->pid);
    char *exe = vsp_escape_bytes(a->exe ? a->exe : "?", 1); /* \xNN: its backslash escaped below */
    for (const char *p = exe ? exe : "?"; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    free(exe);
    fprintf(out, " (%u)\"}}", a->pid);
    for (size_t i = 0; i < a->nsamples; i++) {
        const struct vsp_sample *s = &a->samples[i];
        fprintf(out, ",\n{\"name\":\"live bytes\",\"ph\":\"C\",\"pid\":%u,\"tid\":0,\"ts\":%.3f,\"args\":{", a->pid,
                TS(s->t0));
        for (size_t k = 0; k < NTRACK; k++)
            fprintf(out, "%s\"%s\":%" PRIu64, k ? "," : "", vsp_memory_name((unsigned)track_kinds[k]),
                    s->bytes[track_kinds[k]]);
        fputs("}}", out);
    }
    for (size_t i = 0; i < a->ninstants; i++) {
        const struct vsp_instant *in = &a->instants[i];
        fprintf(out, ",\n{\"name\":\"%s\",\"ph\":\"i\",\"s\":\"p\",\"pid\":%u,\"tid\":0,\"ts\":%.3f,"
                     "\"args\":{\"api\":\"%s\",\"bytes\":%" PRIu64,
                instant_name(in->kind), a->pid, TS(in->time_ns), vsp_api_name(in->api), in->size);
        char site[600];
        if (vsp_python_site(a, in->stack_id, site, sizeof site)) { /* issue 21: the Python line */
            fputs(",\"python\":\"", out);
            for (const char *p = site; *p; p++)
                if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                    fputc(*p, out);
            fputc('"', out);
        }
        fputs("}}", out);
    }
    /* crash and alloc_error from the findings (the analysis has instants of out-of-memory,
     * fragmentation and host fallback only) */
    for (size_t i = 0; i < a->nfindings; i++) {
        const struct vsp_finding *f = &a->findings[i];
        if (f->kind == VSP_F_CRASH) {
            fprintf(out, ",\n{\"name\":\"crash\",\"ph\":\"i\",\"s\":\"p\",\"pid\":%u,\"tid\":0,\"ts\":%.3f,"
                         "\"args\":{\"signal\":%d}}",
                    a->pid, TS(vsp_analysis_end_ns(a)), f->signal ? f->signal : a->signal);
        } else if (f->kind == VSP_F_ALLOC_ERROR) {
            const char *rn = result_name(f->api, f->result);
            fprintf(out, ",\n{\"name\":\"allocation error\",\"ph\":\"i\",\"s\":\"p\",\"pid\":%u,\"tid\":0,"
                         "\"ts\":%.3f,\"args\":{\"api\":\"%s\",\"result\":%d,\"result_name\":\"%s\",\"count\":%" PRIu64
                         "}}",
                    a->pid, TS(f->first_time_ns), vsp_api_name(f->api), (int)f->result, rn ? rn : "",
                    f->count);
        }
    }
#undef TS
}

void vsp_perfetto_end(FILE *out)
{
    fputs("\n]}\n", out);
}

/* ---- SVG timeline ----
 * Every trace on one shared time axis (the wall clock of each trace's header), one panel per
 * process named by its command line: device bytes stacked by memory kind, host memory (managed,
 * pinned, mapped, registered) in its own band with its own scale below so that it shows however
 * small it is beside the device, failures marked by kind, the bytes still live at the end written
 * at the right edge. Everything is readable without hovering; the <title>s add detail. */

#define SVG_W 1000
#define PLOT_X 96
#define PLOT_W 660
#define NOTE_X (PLOT_X + PLOT_W + 12)
#define TOP_H 84
#define DEV_H 150
#define HOST_GAP 14
#define HOST_H 56
#define PANEL_HEAD 44
#define PANEL_TAIL 22
#define AXIS_H 52

static const int device_kinds[] = {VSP_MEM_DEVICE, VSP_MEM_PHYSICAL, VSP_MEM_ARRAY, VSP_MEM_UNKNOWN};
static const int host_kinds[] = {VSP_MEM_MANAGED, VSP_MEM_HOST_PINNED, VSP_MEM_HOST_MAPPED, VSP_MEM_HOST_REGISTERED};
#define NDEV (sizeof device_kinds / sizeof device_kinds[0])
#define NHOST (sizeof host_kinds / sizeof host_kinds[0])

static const char *const kind_colors[VSP_MEM_COUNT_] = {
    [VSP_MEM_UNKNOWN] = "#bab0ac",      [VSP_MEM_DEVICE] = "#4e79a7",      [VSP_MEM_MANAGED] = "#f28e2b",
    [VSP_MEM_HOST_PINNED] = "#9c755f",  [VSP_MEM_HOST_MAPPED] = "#edc948", [VSP_MEM_HOST_REGISTERED] = "#b07aa1",
    [VSP_MEM_ARRAY] = "#76b7b2",        [VSP_MEM_PHYSICAL] = "#59a14f",    [VSP_MEM_MAPPING] = "#7f7f7f"};

/* Failure markers: each kind its own colour and shape. */
static const char *mark_color(int kind)
{
    switch (kind) {
    case VSP_F_OOM: return "#d62728";
    case VSP_F_FRAGMENTATION: return "#8e24aa";
    case VSP_F_HOST_FALLBACK: return "#e6550d";
    case VSP_F_CRASH: return "#000000";
    case VSP_F_ALLOC_ERROR: return "#e7298a";
    default: return "#555555";
    }
}

static void marker_shape(FILE *out, int kind, double x, double y)
{
    const char *c = mark_color(kind);
    switch (kind) {
    case VSP_F_OOM: /* triangle pointing down */
        fprintf(out, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>", x - 5, y - 5, x + 5, y - 5, x,
                y + 5, c);
        break;
    case VSP_F_FRAGMENTATION: /* diamond */
        fprintf(out, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>", x, y - 6, x + 5, y,
                x, y + 6, x - 5, y, c);
        break;
    case VSP_F_HOST_FALLBACK: /* ring */
        fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"white\" stroke=\"%s\" stroke-width=\"2.5\"/>", x,
                y, c);
        break;
    case VSP_F_CRASH: /* cross */
        fprintf(out, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" stroke-width=\"2.5\"/>",
                x - 5, y - 5, x + 5, y + 5, x - 5, y + 5, x + 5, y - 5, c);
        break;
    default: /* square */
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"%s\"/>", x - 4.5, y - 4.5, c);
    }
}

struct svg_mark {
    uint64_t time_ns;
    int kind;
    uint16_t api;
    uint64_t size, count;
    int32_t result;
    int signal;
    char python[160]; /* the call's innermost Python frame (issue 21), "" if none */
};

struct svg_trace {
    struct proc_id id;
    char *path;
    int complete, in_progress, coarse_clock;
    uint64_t realtime, monotonic;
    uint64_t t_first, t_end;          /* the process's own clock */
    struct vsp_sample *samples;
    size_t nsamples;
    struct svg_mark *marks;
    size_t nmarks;
    uint64_t kind_live[VSP_MEM_COUNT_];
    uint64_t peak_bytes, peak_time_ns;
    uint64_t dev_max, host_max;
    int present[VSP_MEM_COUNT_];
    /* --plan: each purpose's planned bytes, a dashed line across the device chart */
    struct { int purpose; const char *name; uint64_t bytes; } planned[VSP_PLAN_COUNT_];
    int nplanned;
};

static struct {
    FILE *out;
    struct svg_trace *tr;
    size_t n, cap;
} svg;

void vsp_svg_begin(FILE *out, int ntraces)
{
    svg.out = out;
    svg.n = 0;
    svg.cap = ntraces > 0 ? (size_t)ntraces : 1;
    svg.tr = calloc(svg.cap, sizeof *svg.tr);
}

static void add_mark(struct svg_trace *t, const struct svg_mark *m, size_t cap)
{
    if (t->nmarks < cap)
        t->marks[t->nmarks++] = *m;
}

void vsp_svg_trace(FILE *out, const char *path, const struct vsp_analysis *a, int index)
{
    (void)out;
    (void)index;
    if (svg.n == svg.cap) {
        struct svg_trace *g = realloc(svg.tr, 2 * svg.cap * sizeof *g);
        if (!g)
            return;
        svg.tr = g;
        svg.cap *= 2;
    }
    struct svg_trace *t = &svg.tr[svg.n];
    memset(t, 0, sizeof *t);
    proc_id_init(&t->id, a, svg.n);
    t->path = strdup(path ? path : "");
    t->complete = a->complete;
    t->in_progress = a->in_progress;
    t->coarse_clock = a->coarse_clock;
    t->realtime = a->start_realtime_ns;
    t->monotonic = a->start_monotonic_ns;
    t->t_first = vsp_analysis_first_ns(a);
    if (t->monotonic && t->monotonic < t->t_first)
        t->t_first = t->monotonic; /* the trace (and the process) began before its first event */
    t->t_end = vsp_analysis_end_ns(a);
    if (t->t_end < t->t_first)
        t->t_end = t->t_first;
    if (a->nsamples) {
        t->samples = malloc(a->nsamples * sizeof *t->samples);
        if (t->samples) {
            memcpy(t->samples, a->samples, a->nsamples * sizeof *t->samples);
            t->nsamples = a->nsamples;
        }
    }
    size_t cap = a->ninstants + a->nfindings;
    t->marks = calloc(cap ? cap : 1, sizeof *t->marks);
    if (!t->marks)
        cap = 0;
    for (size_t i = 0; i < a->ninstants; i++) {
        const struct vsp_instant *in = &a->instants[i];
        struct svg_mark m = {.time_ns = in->time_ns, .kind = in->kind, .api = in->api, .size = in->size, .count = 1};
        vsp_python_site(a, in->stack_id, m.python, sizeof m.python);
        add_mark(t, &m, cap);
    }
    /* crash and alloc_error: from the findings (the analysis has no instants of theirs) */
    for (size_t i = 0; i < a->nfindings; i++) {
        const struct vsp_finding *f = &a->findings[i];
        if (f->kind == VSP_F_CRASH) {
            struct svg_mark m = {.time_ns = t->t_end, .kind = VSP_F_CRASH, .count = 1,
                                 .signal = f->signal ? f->signal : a->signal};
            add_mark(t, &m, cap);
        } else if (f->kind == VSP_F_ALLOC_ERROR) {
            struct svg_mark m = {.time_ns = f->first_time_ns, .kind = VSP_F_ALLOC_ERROR, .api = f->api,
                                 .size = f->requested ? f->requested : f->bytes, .count = f->count,
                                 .result = f->result};
            add_mark(t, &m, cap);
        }
    }
    memcpy(t->kind_live, a->kind_live, sizeof t->kind_live);
    t->peak_bytes = a->peak_bytes;
    t->peak_time_ns = a->peak_time_ns;
    for (size_t i = 0; i < t->nsamples; i++) {
        uint64_t d = 0, h = 0;
        for (size_t k = 0; k < NDEV; k++)
            d += t->samples[i].bytes[device_kinds[k]];
        for (size_t k = 0; k < NHOST; k++)
            h += t->samples[i].bytes[host_kinds[k]];
        if (d > t->dev_max)
            t->dev_max = d;
        if (h > t->host_max)
            t->host_max = h;
        for (int k = 0; k < VSP_MEM_COUNT_; k++)
            if (t->samples[i].bytes[k] && k != VSP_MEM_MAPPING)
                t->present[k] = 1;
    }
    for (int r = 0; a->plan && r < a->plan->nrows && t->nplanned < VSP_PLAN_COUNT_; r++) {
        const struct vsp_plan_row *row = &a->plan->rows[r];
        if (!row->planned)
            continue;
        t->planned[t->nplanned].purpose = row->purpose;
        t->planned[t->nplanned].name = row->name ? row->name : "?";
        t->planned[t->nplanned++].bytes = row->planned;
        if (row->planned > t->dev_max)
            t->dev_max = row->planned; /* the chart reaches the highest planned line */
    }
    svg.n++;
}

/* Round axis steps: time in {1, 2, 2.5, 5} x 10^k ns giving 5 to 10 ticks. */
static double time_step(double span_ns)
{
    static const double m[] = {1, 2, 2.5, 5};
    for (double p = 1;; p *= 10)
        for (int i = 0; i < 4; i++)
            if ((uint64_t)(span_ns / (m[i] * p)) + 1 <= 10) /* span_ns > 0: truncation rounds down */
                return m[i] * p;
}

/* Bytes: a power of two times KiB/MiB/GiB (or a half or quarter of one), at most max_ticks steps. */
static uint64_t byte_step(uint64_t maxv, int max_ticks, int *nsteps)
{
    if (!maxv)
        maxv = 1024;
    uint64_t unit = 1;
    while (unit < (1ull << 40) && maxv >= unit * 1024)
        unit *= 1024;
    uint64_t step = unit >= 1024 ? unit / 4 : 1;
    while ((maxv + step - 1) / step > (uint64_t)max_ticks)
        step *= 2;
    *nsteps = (int)((maxv + step - 1) / step);
    return step;
}

/* "1.50" to "1.5", "2.000" to "2": a decimal number's trailing zeros dropped, and its point with them. */
static void trim_zeros(char *buf)
{
    char *e = buf + strlen(buf);
    while (e > buf && e[-1] == '0')
        *--e = 0;
    if (e > buf && e[-1] == '.')
        *--e = 0;
}

/* "0", "512 KiB", "1.5 MiB", "16 MiB", "1 GiB": trailing zeros dropped. */
static void round_bytes(char *buf, size_t len, uint64_t v)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    double d = (double)v;
    while (i < 4 && d >= 1024.0) {
        d /= 1024.0;
        i++;
    }
    if (!v) {
        snprintf(buf, len, "0");
        return;
    }
    snprintf(buf, len, "%.2f", d);
    trim_zeros(buf);
    size_t n = strlen(buf);
    snprintf(buf + n, len - n, " %s", u[i]);
}

/* One layer of a stacked step chart: kinds[0..k] summed is the upper edge, kinds[0..k-1] the lower. */
static void stacked_layers(FILE *out, const struct svg_trace *t, const int *kinds, size_t nk, const double *xs0,
                           const double *xs1, double top, double h, uint64_t ymax)
{
    size_t n = t->nsamples;
    for (size_t k = 0; k < nk; k++) {
        if (!t->present[kinds[k]])
            continue;
        fprintf(out, "<polygon fill=\"%s\" fill-opacity=\"0.9\" stroke=\"%s\" stroke-width=\"0.5\" points=\"",
                kind_colors[kinds[k]], kind_colors[kinds[k]]);
        for (size_t i = 0; i < n; i++) {
            uint64_t s = 0;
            for (size_t j = 0; j <= k; j++)
                s += t->samples[i].bytes[kinds[j]];
            double y = top + h - (double)s * h / (double)ymax;
            fprintf(out, "%.1f,%.1f %.1f,%.1f ", xs0[i], y, xs1[i], y);
        }
        for (size_t i = n; i-- > 0;) {
            uint64_t s = 0;
            for (size_t j = 0; j < k; j++)
                s += t->samples[i].bytes[kinds[j]];
            double y = top + h - (double)s * h / (double)ymax;
            fprintf(out, "%.1f,%.1f %.1f,%.1f%s", xs1[i], y, xs0[i], y, i ? " " : "");
        }
        fprintf(out, "\"><title>%s</title></polygon>\n", vsp_memory_name((unsigned)kinds[k]));
        /* a run of this kind too short in time to see gets 4 pixels, so that nothing allocated
         * vanishes (a fallback to managed memory just before the end is what one looks for) */
        for (size_t i = 0; i < n;) {
            if (!t->samples[i].bytes[kinds[k]]) {
                i++;
                continue;
            }
            size_t j = i;
            uint64_t hi = 0, lo = 0;
            for (; j < n && t->samples[j].bytes[kinds[k]]; j++) {
                uint64_t s = 0;
                for (size_t q = 0; q < k; q++)
                    s += t->samples[j].bytes[kinds[q]];
                if (s + t->samples[j].bytes[kinds[k]] > hi) {
                    hi = s + t->samples[j].bytes[kinds[k]];
                    lo = s;
                }
            }
            double x0 = xs0[i], x1 = xs1[j - 1];
            if (x1 - x0 < 4) {
                if (x0 + 4 > PLOT_X + PLOT_W)
                    x0 = PLOT_X + PLOT_W - 4;
                double y1 = top + h - (double)hi * h / (double)ymax, y0 = top + h - (double)lo * h / (double)ymax;
                fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"4\" height=\"%.1f\" fill=\"%s\"/>\n", x0, y1,
                        y0 - y1 > 1 ? y0 - y1 : 1, kind_colors[kinds[k]]);
            }
            i = j;
        }
    }
}

/* The most a band held, named by kind and written where it happened: a small amount of host
 * memory is read, not looked for. */
static void band_peak_label(FILE *out, const struct svg_trace *t, const int *kinds, size_t nk, const double *xs0,
                            double top, double h, uint64_t ymax)
{
    size_t at = 0;
    uint64_t best = 0;
    for (size_t i = 0; i < t->nsamples; i++) {
        uint64_t s = 0;
        for (size_t k = 0; k < nk; k++)
            s += t->samples[i].bytes[kinds[k]];
        if (s > best) {
            best = s;
            at = i;
        }
    }
    if (!best)
        return;
    char lbl[32], what[160] = "";
    size_t used = 0;
    for (size_t k = 0; k < nk; k++) {
        uint64_t v = t->samples[at].bytes[kinds[k]];
        if (!v)
            continue;
        vsp_human_bytes(lbl, sizeof lbl, v);
        int w = snprintf(what + used, sizeof what - used, "%s%s %s", used ? ", " : "", vsp_memory_name((unsigned)kinds[k]), lbl);
        if (w < 0 || (size_t)w >= sizeof what - used)
            break;
        used += (size_t)w;
    }
    double x = xs0[at], y = top + h - (double)best * h / (double)ymax;
    int right = x > PLOT_X + PLOT_W / 2;
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"%s\" fill=\"#333\" stroke=\"white\" "
                 "stroke-width=\"3\" paint-order=\"stroke\">most: %s</text>\n",
            right ? x - 12 : x + 12, y < top + 12 ? top + 12 : y + 4, right ? "end" : "start", what);
}

/* Value axis of one chart: grid lines and round labels. */
static void byte_axis(FILE *out, double top, double h, uint64_t step, int nsteps)
{
    char lbl[32];
    for (int g = 0; g <= nsteps; g++) {
        double y = top + h - (double)g * h / nsteps;
        round_bytes(lbl, sizeof lbl, step * (uint64_t)g);
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                     "<text class=\"byte-tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
                PLOT_X, PLOT_X + PLOT_W, y, y, PLOT_X - 6, y + 4, lbl);
    }
}

static void mark_title(char *buf, size_t len, const struct svg_mark *m)
{
    switch (m->kind) {
    case VSP_F_OOM:
    case VSP_F_FRAGMENTATION:
    case VSP_F_HOST_FALLBACK:
        snprintf(buf, len, "%s: %s of %" PRIu64 " bytes", instant_name(m->kind), vsp_api_name(m->api), m->size);
        break;
    case VSP_F_CRASH: crash_text(buf, len, m->signal); break;
    case VSP_F_ALLOC_ERROR: alloc_error_text(buf, len, instant_name(m->kind), m->api, m->result, m->count); break;
    default: snprintf(buf, len, "%s", instant_name(m->kind));
    }
    size_t n = strlen(buf);
    if (m->python[0] && n < len)
        snprintf(buf + n, len - n, " at %s", m->python);
}

static const int legend_marks[] = {VSP_F_OOM, VSP_F_FRAGMENTATION, VSP_F_HOST_FALLBACK, VSP_F_ALLOC_ERROR,
                                   VSP_F_CRASH};

static void svg_legend(FILE *out)
{
    int present[VSP_MEM_COUNT_] = {0}, marks[VSP_F_COUNT_] = {0}, peak = 0;
    for (size_t i = 0; i < svg.n; i++) {
        for (int k = 0; k < VSP_MEM_COUNT_; k++)
            present[k] |= svg.tr[i].present[k];
        for (size_t j = 0; j < svg.tr[i].nmarks; j++)
            if (svg.tr[i].marks[j].kind >= 0 && svg.tr[i].marks[j].kind < VSP_F_COUNT_)
                marks[svg.tr[i].marks[j].kind] = 1;
        peak |= svg.tr[i].peak_bytes != 0;
    }
    fputs("<g id=\"legend\" font-size=\"12\">\n", out);
    int x = PLOT_X;
    fprintf(out, "<text x=\"%d\" y=\"48\" text-anchor=\"end\" fill=\"#555\">memory</text>\n", PLOT_X - 8);
    static const int order[] = {VSP_MEM_DEVICE, VSP_MEM_PHYSICAL, VSP_MEM_ARRAY, VSP_MEM_UNKNOWN, VSP_MEM_MANAGED,
                                VSP_MEM_HOST_PINNED, VSP_MEM_HOST_MAPPED, VSP_MEM_HOST_REGISTERED};
    int any = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        if (!present[order[k]])
            continue;
        int host = order[k] == VSP_MEM_MANAGED || order[k] == VSP_MEM_HOST_PINNED || order[k] == VSP_MEM_HOST_MAPPED ||
                   order[k] == VSP_MEM_HOST_REGISTERED;
        fprintf(out, "<rect x=\"%d\" y=\"38\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"48\">%s%s</text>\n",
                x, kind_colors[order[k]], x + 16, vsp_memory_name((unsigned)order[k]), host ? " (host)" : "");
        x += 16 + 7 * (int)strlen(vsp_memory_name((unsigned)order[k])) + (host ? 46 : 0) + 18;
        any = 1;
    }
    if (!any)
        fprintf(out, "<text x=\"%d\" y=\"48\" fill=\"#555\">nothing allocated</text>\n", x);
    x = PLOT_X;
    fprintf(out, "<text x=\"%d\" y=\"72\" text-anchor=\"end\" fill=\"#555\">marks</text>\n", PLOT_X - 8);
    if (peak) {
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"62\" y2=\"74\" stroke=\"#4e79a7\" stroke-width=\"1.5\" "
                     "stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"72\">device peak</text>\n",
                x + 6, x + 6, x + 16);
        x += 110;
    }
    int planned = 0;
    for (size_t i = 0; i < svg.n; i++)
        planned |= svg.tr[i].nplanned > 0;
    if (planned) {
        fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"67\" y2=\"67\" stroke=\"#555\" stroke-width=\"1.5\" "
                     "stroke-dasharray=\"8 4\"/><text x=\"%d\" y=\"72\">planned (--plan)</text>\n",
                x, x + 20, x + 26);
        x += 140;
    }
    any = 0;
    for (size_t k = 0; k < sizeof legend_marks / sizeof legend_marks[0]; k++) {
        int kind = legend_marks[k];
        if (!marks[kind])
            continue;
        marker_shape(out, kind, x + 6, 67);
        fprintf(out, "<text x=\"%d\" y=\"72\" fill=\"%s\">%s</text>\n", x + 16, mark_color(kind), instant_name(kind));
        x += 16 + 7 * (int)strlen(instant_name(kind)) + 22;
        any = 1;
    }
    if (!any)
        fprintf(out, "<text x=\"%d\" y=\"72\" fill=\"#555\">no failed allocations</text>\n", x);
    fputs("</g>\n", out);
}

/* What a chart holds at the end, written at the right edge: a dot at xe on its level, a dashed
 * line to the note, the note ("live at exit: 8 MiB") and the chart's name under it. */
static void live_note(FILE *out, double xe, double top, double h, uint64_t ymax, uint64_t live, const char *when,
                      const char *chart)
{
    char lbl[32];
    double y = top + h - (double)live * h / (double)ymax;
    vsp_human_bytes(lbl, sizeof lbl, live);
    fprintf(out, "<g class=\"live-at-end\"><circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#222\"/>"
                 "<line x1=\"%.1f\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#222\" stroke-dasharray=\"2 2\"/>",
            xe, y, xe, NOTE_X - 2, y, y);
    double ty = y < top + 12 ? top + 12 : y > top + h - 16 ? top + h - 16 : y;
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-weight=\"bold\">%s: %s</text>", NOTE_X, ty + 4, when, lbl);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" fill=\"#555\" font-size=\"11\">%s</text></g>\n", NOTE_X, ty + 17, chart);
}

static const char *const plan_colors[VSP_PLAN_COUNT_] = {"#2ca02c", "#17becf", "#bcbd22", "#7f7f7f", "#d62728"};

/* --plan: a dashed line per purpose at its planned bytes, named at the left edge (weights,
 * kv_cache, activations and overhead are parts of the total; each is drawn at its own size). */
static void planned_lines(FILE *out, const struct svg_trace *t, double top, double h, uint64_t ymax)
{
    char lbl[32];
    for (int i = 0; i < t->nplanned; i++) {
        int pu = t->planned[i].purpose;
        double y = top + h - (double)t->planned[i].bytes * h / (double)ymax;
        vsp_human_bytes(lbl, sizeof lbl, t->planned[i].bytes);
        fprintf(out, "<g class=\"planned\"><title>planned %s: %s</title><line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
                     "y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"8 4\"/>"
                     "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"%s\" stroke=\"white\" stroke-width=\"3\" "
                     "paint-order=\"stroke\">planned %s %s</text></g>\n",
                t->planned[i].name, lbl, PLOT_X, PLOT_X + PLOT_W, y, y, plan_colors[pu % VSP_PLAN_COUNT_],
                PLOT_X + 4 + 150 * i, y - 3, plan_colors[pu % VSP_PLAN_COUNT_], t->planned[i].name, lbl);
    }
}

/* Times outside the axis (a corrupt or odd trace) are drawn at its ends, never outside the plot. */
static double clamp_x(double x)
{
    return x < PLOT_X ? PLOT_X : x > PLOT_X + PLOT_W ? PLOT_X + PLOT_W : x;
}

static int svg_panel_height(const struct svg_trace *t)
{
    return PANEL_HEAD + DEV_H + (t->host_max ? HOST_GAP + HOST_H : 0) + PANEL_TAIL;
}

void vsp_svg_end(FILE *out)
{
    /* one time base: the wall clock of each header when every trace has one, else the monotonic
     * clock of the events (one machine, one boot: comparable as it is) */
    int wall = svg.n > 0;
    for (size_t i = 0; i < svg.n; i++)
        wall &= svg.tr[i].realtime && svg.tr[i].monotonic;
    int64_t *base = calloc(svg.n ? svg.n : 1, sizeof *base);
    double g0 = 0, g1 = 0;
    for (size_t i = 0; i < svg.n; i++) {
        struct svg_trace *t = &svg.tr[i];
        base[i] = wall ? (int64_t)t->realtime - (int64_t)t->monotonic : 0;
        double a0 = (double)t->t_first + (double)base[i], a1 = (double)t->t_end + (double)base[i];
        if (!i || a0 < g0)
            g0 = a0;
        if (!i || a1 > g1)
            g1 = a1;
    }
    if (g1 <= g0)
        g1 = g0 + 1;
    double span = g1 - g0, tstep = time_step(span);
    int nticks = (int)(span / tstep) + 1;
    double unit = span >= 1e9 ? 1e9 : span >= 1e6 ? 1e6 : span >= 1e3 ? 1e3 : 1;
    const char *uname = unit == 1e9 ? "s" : unit == 1e6 ? "ms" : unit == 1e3 ? "\xc2\xb5s" : "ns";

    struct proc_id **order = calloc(svg.n ? svg.n : 1, sizeof *order);
    struct proc_id *ids = calloc(svg.n ? svg.n : 1, sizeof *ids);
    for (size_t i = 0; i < svg.n; i++)
        ids[i] = svg.tr[i].id;
    name_processes(ids, svg.n, order);

    int height = TOP_H + AXIS_H;
    for (size_t i = 0; i < svg.n; i++)
        height += svg_panel_height(&svg.tr[i]);
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, height, SVG_W, height);
    fprintf(out, "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">vramspy: live memory by kind over time, "
                 "%zu process%s</text>\n", PLOT_X, svg.n, svg.n == 1 ? "" : "es");
    svg_legend(out);

    int y = TOP_H;
#define X(t) clamp_x(PLOT_X + ((double)(t) + (double)b - g0) * PLOT_W / span)
    for (size_t oi = 0; oi < svg.n; oi++) {
        size_t ti = (size_t)(order[oi] - ids);
        const struct svg_trace *t = &svg.tr[ti];
        int64_t b = base[ti];
        int dev_top = y + PANEL_HEAD, host_top = dev_top + DEV_H + HOST_GAP;
        fprintf(out, "<g class=\"process\">\n");
        fprintf(out, "<text class=\"process-name\" x=\"%d\" y=\"%d\" font-size=\"13\" font-weight=\"bold\">", PLOT_X,
                y + 18);
        xml_escape(out, order[oi]->name);
        fputs("</text>\n", out);
        char sub[4600], sig[32], crashed[64];
        const struct svg_mark *crash = NULL;
        for (size_t j = 0; j < t->nmarks; j++)
            if (t->marks[j].kind == VSP_F_CRASH)
                crash = &t->marks[j];
        const char *state = t->in_progress ? "still running" : t->complete ? "complete" : "incomplete";
        if (crash) {
            if (crash->signal)
                snprintf(crashed, sizeof crashed, "crashed (%s)", signal_name(crash->signal, sig, sizeof sig));
            else
                snprintf(crashed, sizeof crashed, "crashed");
            state = crashed;
        }
        snprintf(sub, sizeof sub, "pid %u, %s, %s%s", t->id.pid, state, t->path,
                 t->coarse_clock ? ", times at the kernel's tick (VRAMSPY_CLOCK=coarse)" : "");
        fprintf(out, "<text x=\"%d\" y=\"%d\" fill=\"#666\" font-size=\"11\">", PLOT_X, y + 33);
        xml_escape(out, sub);
        fputs("</text>\n", out);

        /* device chart */
        int nsteps;
        uint64_t dstep = byte_step(t->dev_max, 5, &nsteps);
        uint64_t dmax = dstep * (uint64_t)nsteps;
        fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#bbb\"/>\n", PLOT_X,
                dev_top, PLOT_W, DEV_H);
        byte_axis(out, dev_top, DEV_H, dstep, nsteps);
        fprintf(out, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\" fill=\"#555\">"
                     "device</text>\n", dev_top + DEV_H / 2, dev_top + DEV_H / 2);
        uint64_t hstep = 0, hmax = 0;
        int hsteps = 0;
        if (t->host_max) {
            hstep = byte_step(t->host_max, 2, &hsteps);
            hmax = hstep * (uint64_t)hsteps;
            fprintf(out, "<rect class=\"host-band\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fbfaf7\" "
                         "stroke=\"#bbb\"/>\n",
                    PLOT_X, host_top, PLOT_W, HOST_H);
            byte_axis(out, host_top, HOST_H, hstep, hsteps);
            fprintf(out, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\" "
                         "fill=\"#555\">host</text>\n", host_top + HOST_H / 2, host_top + HOST_H / 2);
        }
        /* the shared time grid */
        int bottom = t->host_max ? host_top + HOST_H : dev_top + DEV_H;
        for (int k = 0; k < nticks; k++) {
            double x = PLOT_X + k * tstep * PLOT_W / span;
            fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#e4e4e4\"/>", x, x, dev_top, bottom);
            fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", x, x, bottom,
                    bottom + 4);
        }
        /* when the process lived */
        double xa = X(t->t_first), xe = X(t->t_end);
        fprintf(out, "<line class=\"start\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#333\" stroke-width=\"2\">"
                     "<title>traced from here</title></line>\n", xa, xa, dev_top, dev_top + 6);

        /* the stacked areas: each sample holds until the next begins (the last until the end) */
        double *xs0 = calloc(t->nsamples ? t->nsamples : 1, sizeof *xs0);
        double *xs1 = calloc(t->nsamples ? t->nsamples : 1, sizeof *xs1);
        for (size_t i = 0; xs0 && xs1 && i < t->nsamples; i++) {
            xs0[i] = X(t->samples[i].t0);
            xs1[i] = i + 1 < t->nsamples ? X(t->samples[i + 1].t0) : xe;
        }
        size_t ns = t->nsamples;
        if (xs0 && xs1 && ns && xs1[ns - 1] - xs0[ns - 1] < 3) {
            /* what was allocated last, just before the end, gets 3 pixels: taken from the sample
             * before it, so that the edges stay in order */
            xs1[ns - 1] = xs0[ns - 1] + 3 > PLOT_X + PLOT_W ? PLOT_X + PLOT_W : xs0[ns - 1] + 3;
            if (xs0[ns - 1] > xs1[ns - 1] - 3)
                xs0[ns - 1] = xs1[ns - 1] - 3;
            for (size_t i = ns - 1; i-- > 0;) {
                if (xs1[i] > xs0[i + 1])
                    xs1[i] = xs0[i + 1];
                if (xs0[i] > xs1[i])
                    xs0[i] = xs1[i];
            }
        }
        if (xs0 && xs1 && t->nsamples) {
            stacked_layers(out, t, device_kinds, NDEV, xs0, xs1, dev_top, DEV_H, dmax);
            if (t->host_max) {
                stacked_layers(out, t, host_kinds, NHOST, xs0, xs1, host_top, HOST_H, hmax);
                band_peak_label(out, t, host_kinds, NHOST, xs0, host_top, HOST_H, hmax);
            }
        } else {
            fprintf(out, "<text x=\"%d\" y=\"%d\" fill=\"#888\">no allocations</text>\n", PLOT_X + 10,
                    dev_top + DEV_H / 2);
        }
        free(xs0);
        free(xs1);
        planned_lines(out, t, dev_top, DEV_H, dmax);

        /* the device peak */
        char lbl[48];
        if (t->peak_bytes && t->peak_time_ns) {
            double px = X(t->peak_time_ns);
            double py = dev_top + DEV_H - (double)t->peak_bytes * DEV_H / (double)dmax;
            vsp_human_bytes(lbl, sizeof lbl, t->peak_bytes);
            fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#1f3f66\" stroke-width=\"1.2\" "
                         "stroke-dasharray=\"4 3\"/>", px, px, dev_top, dev_top + DEV_H);
            int right = px > PLOT_X + PLOT_W - 140;
            char ptxt[64];
            snprintf(ptxt, sizeof ptxt, "peak %s", lbl);
            double w = 6.2 * (double)strlen(ptxt) + 6, ly = py < dev_top + 26 ? dev_top + 26.0 : py - 6;
            double lx = right ? px - 4 - w : px + 4;
            /* on a white ground: the label sits on the area it names */
            fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"15\" rx=\"2\" fill=\"white\" "
                         "fill-opacity=\"0.9\" stroke=\"#1f3f66\" stroke-width=\"0.6\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" fill=\"#1f3f66\" font-size=\"11\">%s</text>\n",
                    lx, ly - 11, w, lx + 3, ly, ptxt);
        }

        /* failures: a line through the charts and the kind's mark along the top */
        int lastpx[VSP_F_COUNT_];
        for (int k = 0; k < VSP_F_COUNT_; k++)
            lastpx[k] = -100;
        for (size_t j = 0; j < t->nmarks; j++) {
            const struct svg_mark *m = &t->marks[j];
            if (m->kind < 0 || m->kind >= VSP_F_COUNT_)
                continue;
            double x = X(m->time_ns);
            if ((int)x == lastpx[m->kind] && m->kind != VSP_F_CRASH)
                continue; /* one mark per pixel and kind */
            lastpx[m->kind] = (int)x;
            char title[300];
            mark_title(title, sizeof title, m);
            int host = m->kind == VSP_F_HOST_FALLBACK && t->host_max;
            double my = host ? host_top + 8 : m->kind == VSP_F_CRASH ? dev_top + DEV_H / 2.0
                              : m->kind == VSP_F_ALLOC_ERROR          ? dev_top + 22
                                                                     : dev_top + 8;
            fprintf(out, "<g class=\"mark-%s\"><title>", vsp_finding_json_name(m->kind));
            xml_escape(out, title);
            fprintf(out, "</title><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-opacity=\"0.55\"/>",
                    x, x, dev_top, bottom, mark_color(m->kind));
            marker_shape(out, m->kind, x, my);
            if (m->kind == VSP_F_CRASH) {
                const char *s = m->signal ? signal_name(m->signal, sig, sizeof sig) : "crash";
                int after = x - 8 - 7.5 * (double)strlen(s) < PLOT_X; /* no room before it: write it after */
                fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-weight=\"bold\" stroke=\"white\" "
                             "stroke-width=\"3\" paint-order=\"stroke\">%s</text>",
                        after ? x + 8 : x - 8, my + 4, after ? "start" : "end", s);
            }
            fputs("</g>\n", out);
        }

        /* what is live at the end, written at the right edge */
        uint64_t dlive = 0, hlive = 0;
        for (size_t k = 0; k < NDEV; k++)
            dlive += t->kind_live[device_kinds[k]];
        for (size_t k = 0; k < NHOST; k++)
            hlive += t->kind_live[host_kinds[k]];
        const char *when = t->in_progress ? "live now" : crash ? "live when it died" : "live at exit";
        live_note(out, xe, dev_top, DEV_H, dmax, dlive, when, "device");
        if (t->host_max)
            live_note(out, xe, host_top, HOST_H, hmax, hlive, when, "host");
        fputs("</g>\n", out);
        y += svg_panel_height(t);
    }
#undef X
    /* the one time axis, under the last panel */
    fprintf(out, "<g id=\"time-axis\">\n<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", PLOT_X,
            PLOT_X + PLOT_W, y - PANEL_TAIL + 4, y - PANEL_TAIL + 4);
    for (int k = 0; k < nticks; k++) {
        double x = PLOT_X + k * tstep * PLOT_W / span;
        char v[32];
        snprintf(v, sizeof v, "%.3f", k * tstep / unit);
        trim_zeros(v);
        fprintf(out, "<text class=\"time-tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x,
                y - PANEL_TAIL + 20, v);
    }
    fprintf(out, "<text class=\"time-label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#333\">time (%s) since "
                 "the first traced process started</text>\n</g>\n", PLOT_X + PLOT_W / 2, y - PANEL_TAIL + 40, uname);
    fputs("</svg>\n", out);
    for (size_t i = 0; i < svg.n; i++) {
        proc_id_free(&ids[i]);
        free(svg.tr[i].path);
        free(svg.tr[i].samples);
        free(svg.tr[i].marks);
    }
    free(ids);
    free(order);
    free(base);
    free(svg.tr);
    memset(&svg, 0, sizeof svg);
}

/* ---- JUnit XML ----
 * One <testsuite> per process, named by its command line (never the pid: a CI compares names across
 * runs), one <testcase> per --fail-on kind, failing when the process has findings of that kind
 * that count (uncertain ones only with --strict). Findings of other kinds are reported in
 * <system-out>, never as failures. Suites come out in order of start, once every trace is in. */

struct junit_case {
    int kind;
    char *failure; /* the <failure> element, escaped; NULL: passed */
};

struct junit_suite {
    struct proc_id id;
    char *path;
    int complete, in_progress;
    uint64_t dropped, torn;
    struct junit_case cases[VSP_F_COUNT_ + 1];
    int ncases, nfailures;
    char *system_out; /* escaped */
};

static struct {
    struct junit_suite *s;
    size_t n, cap;
} junit;

void vsp_junit_begin(FILE *out)
{
    (void)out;
    junit.n = 0;
    junit.cap = 4;
    junit.s = calloc(junit.cap, sizeof *junit.s);
}

/* One line saying what a finding is, as a person reads it. */
static void finding_line(char *buf, size_t len, const struct vsp_analysis *a, const struct vsp_finding *f)
{
    char b1[32], b2[32], b3[32];
    const char *api = vsp_api_name(f->api);
    int n;
    switch (f->kind) {
    case VSP_F_LEAK:
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        n = snprintf(buf, len, "leak: %s in %" PRIu64 " %s allocation%s by %s never freed", b1, f->count,
                     vsp_memory_name(f->memory), f->count == 1 ? "" : "s", api);
        break;
    case VSP_F_CACHED:
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        n = snprintf(buf, len, "cached: %s in %" PRIu64 " %s allocation%s by %s, held until exit by the %s", b1,
                     f->count, vsp_memory_name(f->memory), f->count == 1 ? "" : "s", api, f->held_by ? f->held_by : "?");
        break;
    case VSP_F_GROWTH:
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        vsp_human_bytes(b2, sizeof b2, (uint64_t)f->rate);
        n = snprintf(buf, len, "growth: +%s of live %s memory over the second half (%s/s) by %s", b1,
                     vsp_memory_name(f->memory), b2, api);
        break;
    case VSP_F_HOST_FALLBACK:
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        n = snprintf(buf, len, "host_fallback: %s of %s memory in %" PRIu64 " allocation%s by %s%s%s", b1,
                     vsp_memory_name(f->memory), f->count, f->count == 1 ? "" : "s", api,
                     f->after_oom ? ", after a device out of memory" : "",
                     f->denied ? ", refused by VRAMSPY_ENFORCE" : "");
        break;
    case VSP_F_OOM:
    case VSP_F_FRAGMENTATION:
        vsp_human_bytes(b1, sizeof b1, f->requested);
        if (f->free_bytes == UINT64_MAX)
            snprintf(b2, sizeof b2, "unknown");
        else
            vsp_human_bytes(b2, sizeof b2, f->free_bytes);
        if (f->total_bytes == UINT64_MAX)
            snprintf(b3, sizeof b3, "unknown");
        else
            vsp_human_bytes(b3, sizeof b3, f->total_bytes);
        n = snprintf(buf, len, "%s: %s of %s failed with out of memory%s (free %s of %s), %" PRIu64 " call%s",
                     vsp_finding_json_name(f->kind), api, b1,
                     f->kind == VSP_F_FRAGMENTATION ? " although enough was free" : "", b2, b3, f->count,
                     f->count == 1 ? "" : "s");
        break;
    case VSP_F_INVALID_FREE:
        n = snprintf(buf, len, "invalid_free: %s of 0x%" PRIx64 ": %s, %" PRIu64 " call%s", api, f->address,
                     f->double_free ? "double free" : "unknown pointer", f->count, f->count == 1 ? "" : "s");
        break;
    case VSP_F_UNTRACKED:
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        vsp_human_bytes(b2, sizeof b2, f->limit);
        n = snprintf(buf, len, "untracked: %s of device memory allocated where no hook saw it (limit %s)", b1, b2);
        break;
    case VSP_F_PEAK:
        vsp_human_bytes(b1, sizeof b1, a->peak_bytes);
        vsp_human_bytes(b2, sizeof b2, f->limit);
        n = snprintf(buf, len, "peak: device memory peaked at %s, above the budget of %s (reached by %s)", b1, b2, api);
        break;
    case VSP_F_CRASH: n = crash_text(buf, len, f->signal ? f->signal : a->signal); break;
    case VSP_F_ALLOC_ERROR:
        n = alloc_error_text(buf, len, vsp_finding_json_name(f->kind), f->api, f->result, f->count);
        break;
    case VSP_F_PLAN:
        vsp_human_bytes(b1, sizeof b1, f->bytes);
        vsp_human_bytes(b2, sizeof b2, f->planned);
        if (!strcmp(f->purpose, "headroom"))
            n = snprintf(buf, len, "plan: headroom risk HIGH, %s used against %s usable device memory", b1, b2);
        else
            n = snprintf(buf, len, "plan: %s measured %s against %s planned (%+.1f%%, tolerance %g%%)", f->purpose,
                         b1, b2, f->deviation * 100, f->tolerance * 100);
        break;
    default: n = snprintf(buf, len, "%s: %s", vsp_finding_json_name(f->kind), api);
    }
    if (f->uncertain && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " (uncertain: %" PRIu64 " events lost)", a->dropped + a->torn);
}

static void junit_stack(FILE *m, const struct vsp_analysis *a, struct vsp_symbolizer *sym, uint32_t stack_id,
                        const char *heading)
{
    const struct vsp_stack *st = vsp_analysis_stack(a, stack_id);
    if (!st)
        return;
    if (heading)
        fprintf(m, "  %s\n", heading);
    for (unsigned fr = 0; fr < st->nframes; fr++) {
        struct vsp_frame_info fi[MAX_INLINE];
        int k = vsp_sym_frame(sym, st, fr, fi, MAX_INLINE);
        for (int j = 0; j < k; j++) {
            char label[700];
            if (vsp_startup_function(fi[j].function))
                continue;
            vsp_frame_label(&fi[j], label, sizeof label);
            if (fi[j].file[0] && !fi[j].python) /* a Python frame's label has its line */
                fprintf(m, "    at %s (%s:%d)\n", label, fi[j].file, fi[j].line);
            else
                fprintf(m, "    at %s\n", label);
        }
    }
}

/* A finding with its stacks, as plain text (escaped when written). */
static void junit_finding(FILE *m, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                          const struct vsp_finding *f)
{
    char line[600];
    finding_line(line, sizeof line, a, f);
    fprintf(m, "%s\n", line);
    if (f->kind == VSP_F_CRASH)
        return;
    junit_stack(m, a, sym, f->stack_id, NULL);
    if (f->kind == VSP_F_INVALID_FREE && f->alloc_stack_id)
        junit_stack(m, a, sym, f->alloc_stack_id, "allocated at:");
    if (f->kind == VSP_F_INVALID_FREE && f->first_free_stack_id)
        junit_stack(m, a, sym, f->first_free_stack_id, "first freed at:");
}

/* Text into an escaped, heap-allocated string. */
static char *escaped(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    xml_escape(m, s);
    fclose(m);
    return buf;
}

void vsp_junit_trace_opts(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                          const struct vsp_junit_opts *o)
{
    (void)out;
    if (junit.n == junit.cap) {
        struct junit_suite *g = realloc(junit.s, 2 * junit.cap * sizeof *g);
        if (!g)
            return;
        junit.s = g;
        junit.cap *= 2;
    }
    struct junit_suite *s = &junit.s[junit.n];
    memset(s, 0, sizeof *s);
    proc_id_init(&s->id, a, junit.n);
    s->path = strdup(path ? path : "");
    s->complete = a->complete;
    s->in_progress = a->in_progress;
    s->dropped = a->dropped;
    s->torn = a->torn;

    int has_peak = 0;
    for (size_t i = 0; i < a->nfindings; i++)
        has_peak |= a->findings[i].kind == VSP_F_PEAK;
    unsigned mask = o->fail_mask & ((1u << VSP_F_COUNT_) - 1);
    if (!(o->max_peak || has_peak))
        mask &= ~(1u << VSP_F_PEAK); /* no budget, no peak check */
    for (int k = 0; k < VSP_F_COUNT_; k++) {
        if (!((mask >> k) & 1))
            continue;
        struct junit_case *c = &s->cases[s->ncases++];
        c->kind = k;
        size_t nf = 0;
        for (size_t i = 0; i < a->nfindings; i++)
            nf += a->findings[i].kind == k && (o->strict || !a->findings[i].uncertain);
        if (!nf)
            continue;
        char *body = NULL, *msg = NULL;
        size_t blen = 0, mlen = 0;
        FILE *bm = open_memstream(&body, &blen), *mm = open_memstream(&msg, &mlen);
        if (!bm || !mm) {
            if (bm)
                fclose(bm);
            if (mm)
                fclose(mm);
            free(body);
            free(msg);
            continue;
        }
        fprintf(mm, "%zu %s finding%s: ", nf, vsp_finding_json_name(k), nf == 1 ? "" : "s");
        size_t shown = 0;
        for (size_t i = 0; i < a->nfindings; i++) {
            const struct vsp_finding *f = &a->findings[i];
            if (f->kind != k || (!o->strict && f->uncertain))
                continue;
            if (shown < 3) {
                char line[600];
                finding_line(line, sizeof line, a, f);
                /* "leak: 8.0 MiB ..." without the kind, which the count names */
                const char *p = strchr(line, ':');
                fprintf(mm, "%s%s", shown ? "; " : "", p && p[1] == ' ' ? p + 2 : line);
            }
            shown++;
            junit_finding(bm, a, sym, f);
        }
        if (shown > 3)
            fprintf(mm, "; and %zu more", shown - 3);
        fclose(bm);
        fclose(mm);
        char *eb = escaped(body ? body : ""), *em = escaped(msg ? msg : "");
        if (asprintf(&c->failure, "<failure type=\"%s\" message=\"%s\">%s</failure>", vsp_finding_json_name(k),
                     em ? em : "", eb ? eb : "") < 0)
            c->failure = NULL;
        else
            s->nfailures++;
        free(eb);
        free(em);
        free(body);
        free(msg);
    }
    if (!mask)
        s->cases[s->ncases++].kind = -1; /* nothing to fail on: one passing case says it was analysed */

    /* everything else: for people, never a failure */
    char *text = NULL;
    size_t tlen = 0;
    FILE *tm = open_memstream(&text, &tlen);
    if (tm) {
        if (a->in_progress)
            fputs("the process is still running: its allocations are live, not leaked\n", tm);
        else if (!a->complete)
            fputs("the trace is incomplete (the process was killed, crashed or called _exit)\n", tm);
        if (a->dropped || a->torn)
            fprintf(tm, "%" PRIu64 " events lost (%" PRIu64 " dropped, %" PRIu64 " torn): findings they could have "
                        "produced are uncertain\n", a->dropped + a->torn, a->dropped, a->torn);
        if (a->suppressed)
            fprintf(tm, "%" PRIu64 " finding%s suppressed\n", a->suppressed, a->suppressed == 1 ? "" : "s");
        for (size_t i = 0; i < a->nfindings; i++) {
            const struct vsp_finding *f = &a->findings[i];
            if (((mask >> f->kind) & 1) && (o->strict || !f->uncertain))
                continue; /* a failure above */
            junit_finding(tm, a, sym, f);
        }
        fclose(tm);
        if (text && *text)
            s->system_out = escaped(text);
        free(text);
    }
    junit.n++;
}

void vsp_junit_end(FILE *out)
{
    struct proc_id *ids = calloc(junit.n ? junit.n : 1, sizeof *ids);
    struct proc_id **order = calloc(junit.n ? junit.n : 1, sizeof *order);
    for (size_t i = 0; i < junit.n; i++)
        ids[i] = junit.s[i].id;
    name_processes(ids, junit.n, order);
    int tests = 0, failures = 0;
    for (size_t i = 0; i < junit.n; i++) {
        tests += junit.s[i].ncases;
        failures += junit.s[i].nfailures;
    }
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"vramspy\" tests=\"%d\" "
                 "failures=\"%d\" errors=\"0\">\n", tests, failures);
    for (size_t oi = 0; oi < junit.n; oi++) {
        size_t si = (size_t)(order[oi] - ids);
        const struct junit_suite *s = &junit.s[si];
        const char *name = order[oi]->name ? order[oi]->name : "?";
        fputs("  <testsuite name=\"vramspy: ", out);
        xml_escape(out, name);
        fprintf(out, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"0\">\n", s->ncases, s->nfailures);
        fputs("    <properties><property name=\"trace\" value=\"", out);
        xml_escape(out, s->path);
        fprintf(out, "\"/><property name=\"pid\" value=\"%u\"/><property name=\"complete\" value=\"%s\"/>"
                     "<property name=\"in_progress\" value=\"%s\"/><property name=\"events_lost\" value=\"%" PRIu64
                     "\"/></properties>\n",
                s->id.pid, s->complete ? "true" : "false", s->in_progress ? "true" : "false", s->dropped + s->torn);
        for (int c = 0; c < s->ncases; c++) {
            const struct junit_case *jc = &s->cases[c];
            fputs("    <testcase classname=\"vramspy.", out);
            xml_escape(out, name);
            fprintf(out, "\" name=\"%s\"", jc->kind < 0 ? "analysed" : vsp_finding_json_name(jc->kind));
            if (!jc->failure)
                fputs("/>\n", out);
            else
                fprintf(out, ">\n      %s\n    </testcase>\n", jc->failure);
        }
        if (s->system_out)
            fprintf(out, "    <system-out>%s</system-out>\n", s->system_out);
        fputs("  </testsuite>\n", out);
    }
    fputs("</testsuites>\n", out);
    for (size_t i = 0; i < junit.n; i++) {
        struct junit_suite *s = &junit.s[i];
        for (int c = 0; c < s->ncases; c++)
            free(s->cases[c].failure);
        free(s->system_out);
        free(s->path);
        proc_id_free(&ids[i]);
    }
    free(ids);
    free(order);
    free(junit.s);
    memset(&junit, 0, sizeof junit);
}
