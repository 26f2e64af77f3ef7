/* Rendering of an analysis: JSON (schema vramspy-report/1, docs/report.md) and text. */
#include "output.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "purposes.h"

#define MAX_INLINE 16

/* The row of label in rows (appended when new); NULL out of memory. */
static struct vsp_purpose_row *purpose_row(struct vsp_purpose_row **rows, size_t *n, size_t *cap, const char *label)
{
    size_t r = 0;
    while (r < *n && strcmp((*rows)[r].label, label) != 0)
        r++;
    if (r < *n)
        return &(*rows)[r];
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct vsp_purpose_row *g = realloc(*rows, nc * sizeof *g);
        if (!g)
            return NULL;
        *rows = g;
        *cap = nc;
    }
    memset(&(*rows)[*n], 0, sizeof **rows);
    snprintf((*rows)[*n].label, sizeof (*rows)[*n].label, "%s", label);
    return &(*rows)[(*n)++];
}

/* biggest at the end first */
static void sort_purposes(struct vsp_purpose_row *rows, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && (rows[j].live_bytes > rows[j - 1].live_bytes ||
                                     (rows[j].live_bytes == rows[j - 1].live_bytes &&
                                      rows[j].peak_bytes > rows[j - 1].peak_bytes)); j--) {
            struct vsp_purpose_row t = rows[j];
            rows[j] = rows[j - 1];
            rows[j - 1] = t;
        }
}

void vsp_purpose_breakdown(struct vsp_analysis *a, const struct vsp_purposes *rules, struct vsp_symbolizer *sym)
{
    if (!a->nlabels && (!rules || !rules->n))
        return;
    const char **labels = calloc(a->nby_stack ? a->nby_stack : 1, sizeof *labels);
    if (!labels)
        return;
    size_t cap = 0, n = 0;
    struct vsp_purpose_row *rows = NULL;
    for (size_t i = 0; i < a->nby_stack; i++) {
        const struct vsp_stack_bytes *b = &a->by_stack[i];
        const char *label = b->label < a->nlabels ? a->labels[b->label] : NULL;
        if (!label && rules && rules->n) {
            const struct vsp_stack *st = vsp_analysis_stack(a, b->stack_id);
            for (unsigned k = 0; st && k < st->nframes && !label; k++) {
                struct vsp_frame_info fi[MAX_INLINE];
                int m = vsp_sym_frame(sym, st, k, fi, MAX_INLINE);
                for (int j = 0; j < m && !label; j++) {
                    int r = vsp_purposes_match(rules, fi[j].function, fi[j].module);
                    if (r >= 0)
                        label = rules->p[r].label;
                }
            }
        }
        labels[i] = label ? label : "(unlabelled)";
        struct vsp_purpose_row *row = purpose_row(&rows, &n, &cap, labels[i]);
        if (!row)
            break;
        if (b->device)
            row->live_bytes += b->live_end;
        else
            row->host_live_bytes += b->live_end;
        row->peak_bytes += b->live_at_peak;
        row->allocated += b->allocated;
        row->allocations += b->allocations;
    }
    sort_purposes(rows, n);
    free(a->purposes);
    a->purposes = rows;
    a->npurposes = n;
    /* several devices: each device's bytes by purpose at its own peak */
    for (size_t d = 0; d < a->ndevices; d++) {
        struct vsp_device_row *dr = &a->devices[d];
        if (!dr->live_at_peak)
            continue;
        size_t dn = 0, dcap = 0;
        struct vsp_purpose_row *drows = NULL;
        for (size_t i = 0; i < a->nby_stack; i++) {
            struct vsp_purpose_row *row = purpose_row(&drows, &dn, &dcap, labels[i]);
            if (!row)
                break;
            row->peak_bytes += dr->live_at_peak[i];
        }
        sort_purposes(drows, dn);
        free(dr->purposes);
        dr->purposes = drows;
        dr->npurposes = dn;
    }
    free(labels);
}

static json_t *hex(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
    return json_string(b);
}

static json_t *bytes_or_null(uint64_t v)
{
    return v == UINT64_MAX ? json_null() : json_integer((json_int_t)v);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* The names of the common result codes: the runtime's for runtime APIs (cuda*), CUresult's for
 * the driver's (cu*). "unknown" for the rest. */
const char *vsp_result_name(unsigned api, int32_t result)
{
    static const struct { int32_t code; const char *rt, *drv; } names[] = {
        {0, "cudaSuccess", "CUDA_SUCCESS"},
        {1, "cudaErrorInvalidValue", "CUDA_ERROR_INVALID_VALUE"},
        {2, "cudaErrorMemoryAllocation", "CUDA_ERROR_OUT_OF_MEMORY"},
        {3, "cudaErrorInitializationError", "CUDA_ERROR_NOT_INITIALIZED"},
        {4, "cudaErrorCudartUnloading", "CUDA_ERROR_DEINITIALIZED"},
        {34, "cudaErrorStubLibrary", "CUDA_ERROR_STUB_LIBRARY"},
        {35, "cudaErrorInsufficientDriver", NULL},
        {36, "cudaErrorCallRequiresNewerDriver", NULL},
        {46, "cudaErrorDevicesUnavailable", "CUDA_ERROR_DEVICE_UNAVAILABLE"},
        {100, "cudaErrorNoDevice", "CUDA_ERROR_NO_DEVICE"},
        {101, "cudaErrorInvalidDevice", "CUDA_ERROR_INVALID_DEVICE"},
        {201, "cudaErrorDeviceUninitialized", "CUDA_ERROR_INVALID_CONTEXT"},
        {400, "cudaErrorInvalidResourceHandle", "CUDA_ERROR_INVALID_HANDLE"},
        {700, "cudaErrorIllegalAddress", "CUDA_ERROR_ILLEGAL_ADDRESS"},
        {712, "cudaErrorHostMemoryAlreadyRegistered", "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"},
        {713, "cudaErrorHostMemoryNotRegistered", "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED"},
        {801, "cudaErrorNotSupported", "CUDA_ERROR_NOT_SUPPORTED"},
        {999, "cudaErrorUnknown", "CUDA_ERROR_UNKNOWN"},
    };
    int driver = strncmp(vsp_api_name(api), "cuda", 4) != 0; /* cuMem...: the driver's */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == result) {
            const char *n = driver ? names[i].drv : names[i].rt;
            return n ? n : "unknown";
        }
    return "unknown";
}

const char *vsp_signal_name(int sig)
{
    static const char *const n[] = {[1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL",
                                    [5] = "SIGTRAP", [6] = "SIGABRT", [7] = "SIGBUS", [8] = "SIGFPE",
                                    [9] = "SIGKILL", [10] = "SIGUSR1", [11] = "SIGSEGV", [12] = "SIGUSR2",
                                    [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM"};
    return sig > 0 && sig < (int)(sizeof n / sizeof n[0]) && n[sig] ? n[sig] : "signal";
}

int vsp_startup_function(const char *function)
{
    return !strcmp(function, "__libc_start_call_main") || !strncmp(function, "__libc_start_main", 17) ||
           !strcmp(function, "_start");
}

void vsp_frame_label(const struct vsp_frame_info *f, char *buf, size_t len)
{
    if (f->function[0]) {
        snprintf(buf, len, "%s", f->function);
    } else if (f->module) {
        const char *b = strrchr(f->module, '/');
        snprintf(buf, len, "%s+0x%" PRIx64, b ? b + 1 : f->module, f->offset);
    } else {
        snprintf(buf, len, "0x%" PRIx64, f->address);
    }
}

/* "NAME ARG1 ARG2": the executable's base name and its arguments. */
char *vsp_command_line(const struct vsp_analysis *a)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return strdup("?");
    const char *exe = a->exe && *a->exe ? a->exe : a->argc > 0 && a->argv[0] ? a->argv[0] : "?";
    const char *b = strrchr(exe, '/');
    fputs(b && b[1] ? b + 1 : exe, m);
    for (int i = 1; i < a->argc; i++)
        if (a->argv[i])
            fprintf(m, " %s", a->argv[i]);
    fclose(m);
    return buf;
}

static json_t *stack_json(struct vsp_symbolizer *sym, const struct vsp_analysis *a, uint32_t id)
{
    json_t *arr = json_array();
    const struct vsp_stack *st = vsp_analysis_stack(a, id);
    if (!st)
        return arr;
    struct vsp_frame_info fi[MAX_INLINE];
    for (unsigned i = 0; i < st->nframes; i++) {
        int n = vsp_sym_frame(sym, st, i, fi, MAX_INLINE);
        for (int k = 0; k < n; k++) {
            json_t *f = json_object();
            json_object_set_new(f, "address", hex(fi[k].address));
            json_object_set_new(f, "module", str_or_null(fi[k].module));
            json_object_set_new(f, "function", str_or_null(fi[k].function));
            json_object_set_new(f, "file", str_or_null(fi[k].file));
            json_object_set_new(f, "line", fi[k].line ? json_integer(fi[k].line) : json_null());
            if (fi[k].module)
                json_object_set_new(f, "offset", hex(fi[k].offset));
            if (fi[k].inlined)
                json_object_set_new(f, "inlined", json_true());
            json_array_append_new(arr, f);
        }
    }
    return arr;
}

static void loss_warning(char *buf, size_t len, const struct vsp_analysis *a)
{
    char jumped[96] = "";
    if (a->abandoned)
        snprintf(jumped, sizeof jumped, ", %llu of them left by a jump out of the call (siglongjmp)",
                 (unsigned long long)a->abandoned);
    snprintf(buf, len, "%llu events lost (%llu dropped by the shim, %llu calls torn by the process's end%s): "
             "leaks and invalid frees may be artefacts of the loss and are marked uncertain",
             (unsigned long long)(a->dropped + a->torn), (unsigned long long)a->dropped,
             (unsigned long long)a->torn, jumped);
}

json_t *vsp_report_json(const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym)
{
    json_t *r = json_object();
    json_object_set_new(r, "schema", json_string("vramspy-report/1"));
    json_t *p = json_object(), *argv = json_array();
    json_object_set_new(p, "pid", json_integer(a->pid));
    json_object_set_new(p, "ppid", json_integer(a->ppid));
    json_object_set_new(p, "exe", str_or_null(a->exe));
    for (int i = 0; i < a->argc; i++)
        json_array_append_new(argv, json_string(a->argv[i]));
    json_object_set_new(p, "argv", argv);
    if (a->have_host) { /* where it ran, its place in a job (HOST record) */
        json_object_set_new(p, "host", str_or_null(a->host));
        json_object_set_new(p, "rank", a->rank >= 0 ? json_integer(a->rank) : json_null());
        json_object_set_new(p, "local_rank", a->local_rank >= 0 ? json_integer(a->local_rank) : json_null());
        json_object_set_new(p, "world_size", a->world_size >= 0 ? json_integer(a->world_size) : json_null());
    }
    json_object_set_new(r, "process", p);
    json_t *t = json_object();
    json_object_set_new(t, "path", json_string(path));
    json_object_set_new(t, "complete", json_boolean(a->complete));
    json_object_set_new(t, "events", json_integer((json_int_t)a->events));
    json_object_set_new(t, "dropped", json_integer((json_int_t)a->dropped));
    json_object_set_new(t, "torn", json_integer((json_int_t)a->torn));
    json_object_set_new(t, "in_progress", json_boolean(a->in_progress));
    json_object_set_new(r, "trace", t);
    json_t *to = json_object();
    json_object_set_new(to, "allocations", json_integer((json_int_t)a->allocations));
    json_object_set_new(to, "frees", json_integer((json_int_t)a->frees));
    json_object_set_new(to, "failed", json_integer((json_int_t)a->failed));
    json_object_set_new(to, "peak_bytes", json_integer((json_int_t)a->peak_bytes));
    json_object_set_new(to, "live_bytes", json_integer((json_int_t)a->live_bytes));
    json_object_set_new(to, "live_allocations", json_integer((json_int_t)a->live_allocations));
    json_object_set_new(to, "host_allocations", json_integer((json_int_t)a->host_allocations));
    json_object_set_new(r, "totals", to);
    if (a->coverage.have) {
        const struct vsp_coverage *cv = &a->coverage;
        json_t *co = json_object();
        json_object_set_new(co, "source", json_string(cv->source == VSP_USAGE_NVML ? "nvml" : "device"));
        json_object_set_new(co, "used_bytes", json_integer((json_int_t)cv->used_bytes));
        json_object_set_new(co, "baseline_bytes", json_integer((json_int_t)cv->baseline_bytes));
        json_object_set_new(co, "traced_bytes", json_integer((json_int_t)cv->traced_bytes));
        json_object_set_new(co, "untracked_bytes", json_integer((json_int_t)cv->untracked_bytes));
        json_object_set_new(co, "samples", json_integer((json_int_t)cv->samples));
        json_object_set_new(r, "coverage", co);
    }
    if (a->npools) {
        json_t *ps = json_array();
        for (size_t i = 0; i < a->npools; i++) {
            const struct vsp_pool_row *pr = &a->pools[i];
            json_t *po = json_object();
            json_object_set_new(po, "pool", hex(pr->pool));
            json_object_set_new(po, "location", json_string(pr->host ? "host" : "device"));
            json_object_set_new(po, "reserved_bytes", bytes_or_null(pr->reserved_current));
            json_object_set_new(po, "reserved_high_bytes", bytes_or_null(pr->reserved_high));
            json_object_set_new(po, "used_bytes", bytes_or_null(pr->used_current));
            json_object_set_new(po, "used_high_bytes", bytes_or_null(pr->used_high));
            json_array_append_new(ps, po);
        }
        json_object_set_new(r, "pools", ps);
    }
    json_t *fs = json_array();
    for (size_t i = 0; i < a->nfindings; i++) {
        const struct vsp_finding *f = &a->findings[i];
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(vsp_finding_json_name(f->kind)));
        json_object_set_new(o, "api", json_string(vsp_api_name(f->api)));
        switch (f->kind) {
        case VSP_F_LEAK:
        case VSP_F_HOST_FALLBACK:
            json_object_set_new(o, "memory", json_string(vsp_memory_name(f->memory)));
            json_object_set_new(o, "count", json_integer((json_int_t)f->count));
            json_object_set_new(o, "bytes", json_integer((json_int_t)f->bytes));
            if (f->kind == VSP_F_HOST_FALLBACK) {
                json_object_set_new(o, "after_oom", json_boolean(f->after_oom));
                json_object_set_new(o, "denied", json_boolean(f->denied));
            }
            if (f->graph)
                json_object_set_new(o, "graph", json_true());
            break;
        case VSP_F_UNTRACKED:
            json_object_set_new(o, "bytes", json_integer((json_int_t)f->bytes));
            json_object_set_new(o, "limit", json_integer((json_int_t)f->limit));
            break;
        case VSP_F_OOM:
        case VSP_F_FRAGMENTATION:
            json_object_set_new(o, "requested", json_integer((json_int_t)f->requested));
            json_object_set_new(o, "free_bytes", bytes_or_null(f->free_bytes));
            json_object_set_new(o, "total_bytes", bytes_or_null(f->total_bytes));
            json_object_set_new(o, "count", json_integer((json_int_t)f->count));
            break;
        case VSP_F_PEAK:
            json_object_set_new(o, "peak_bytes", json_integer((json_int_t)f->bytes));
            json_object_set_new(o, "limit", json_integer((json_int_t)f->limit));
            break;
        case VSP_F_INVALID_FREE:
            json_object_set_new(o, "address", hex(f->address));
            json_object_set_new(o, "reason", json_string(f->double_free ? "double_free" : "unknown_pointer"));
            json_object_set_new(o, "count", json_integer((json_int_t)f->count));
            break;
        case VSP_F_CRASH:
            json_object_set_new(o, "signal", f->signal ? json_integer(f->signal) : json_null());
            break;
        case VSP_F_ALLOC_ERROR:
            json_object_set_new(o, "result", json_integer(f->result));
            json_object_set_new(o, "result_name", json_string(vsp_result_name(f->api, f->result)));
            json_object_set_new(o, "count", json_integer((json_int_t)f->count));
            break;
        case VSP_F_PLAN:
            json_object_set_new(o, "purpose", json_string(f->purpose));
            if (f->device >= 0)
                json_object_set_new(o, "device", json_integer(f->device));
            json_object_set_new(o, "planned_bytes", json_integer((json_int_t)f->planned));
            json_object_set_new(o, "measured_bytes", json_integer((json_int_t)f->bytes));
            if (strcmp(f->purpose, "headroom") != 0) {
                json_object_set_new(o, "deviation", f->planned ? json_real(f->deviation) : json_null());
                json_object_set_new(o, "tolerance", json_real(f->tolerance));
            } else {
                json_object_set_new(o, "risk", json_string("HIGH"));
            }
            break;
        }
        if (f->uncertain)
            json_object_set_new(o, "uncertain", json_true());
        json_object_set_new(o, "stack", stack_json(sym, a, f->stack_id));
        if (f->kind == VSP_F_INVALID_FREE && f->double_free) {
            json_object_set_new(o, "alloc_stack", stack_json(sym, a, f->alloc_stack_id));
            json_object_set_new(o, "first_free_stack", stack_json(sym, a, f->first_free_stack_id));
        }
        json_array_append_new(fs, o);
    }
    json_object_set_new(r, "findings", fs);
    if (a->npurposes) {
        json_t *ps = json_array();
        for (size_t i = 0; i < a->npurposes; i++) {
            json_t *row = json_object();
            json_object_set_new(row, "label", json_string(a->purposes[i].label));
            json_object_set_new(row, "live_bytes", json_integer((json_int_t)a->purposes[i].live_bytes));
            json_object_set_new(row, "peak_bytes", json_integer((json_int_t)a->purposes[i].peak_bytes));
            json_object_set_new(row, "host_live_bytes", json_integer((json_int_t)a->purposes[i].host_live_bytes));
            json_object_set_new(row, "allocated_bytes", json_integer((json_int_t)a->purposes[i].allocated));
            json_object_set_new(row, "allocations", json_integer((json_int_t)a->purposes[i].allocations));
            json_array_append_new(ps, row);
        }
        json_object_set_new(r, "purposes", ps);
    }
    json_object_set_new(r, "suppressed", json_integer((json_int_t)a->suppressed));
    json_t *w = json_array();
    const char *ws = vsp_sym_warnings(sym);
    for (const char *l = ws; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        json_array_append_new(w, json_stringn(l, len));
        l += len + (nl ? 1 : 0);
    }
    char line[400];
    if (a->dropped + a->torn) {
        loss_warning(line, sizeof line, a);
        json_array_append_new(w, json_string(line));
    }
    if (a->in_progress)
        json_array_append_new(w, json_string("the process is still running: the trace is in progress, what it "
                                             "holds is live, not leaked"));
    else if (a->log_failed)
        json_array_append_new(w, json_string("the trace is incomplete: the shim could not write all of it (disk "
                                             "full or a file size limit); the events it kept are reported"));
    else if (!a->complete)
        json_array_append_new(w, json_string("the trace is incomplete: the process did not finish it (killed, "
                                             "crashed or _exit), or the file was cut short"));
    json_object_set_new(r, "warnings", w);
    return r;
}

/* A stack in text: frames innermost first, libc's start-up frames left out. */
static void text_stack(FILE *out, struct vsp_symbolizer *sym, const struct vsp_analysis *a, uint32_t id)
{
    const struct vsp_stack *st = vsp_analysis_stack(a, id);
    if (!st) {
        fprintf(out, "    (no stack)\n");
        return;
    }
    struct vsp_frame_info fi[MAX_INLINE];
    int fno = 0;
    for (unsigned k = 0; k < st->nframes; k++) {
        int n = vsp_sym_frame(sym, st, k, fi, MAX_INLINE);
        for (int j = 0; j < n; j++) {
            if (vsp_startup_function(fi[j].function))
                continue;
            fprintf(out, "    #%-2d ", fno++);
            if (fi[j].function[0]) {
                fprintf(out, "%s%s", fi[j].function, fi[j].inlined ? " [inlined]" : "");
                if (fi[j].file[0])
                    fprintf(out, " (%s:%d)", fi[j].file, fi[j].line);
                else if (fi[j].module)
                    fprintf(out, " (%s+0x%llx)", fi[j].module, (unsigned long long)fi[j].offset);
            } else if (fi[j].module) {
                fprintf(out, "%s+0x%llx", fi[j].module, (unsigned long long)fi[j].offset);
            } else {
                fprintf(out, "0x%llx", (unsigned long long)fi[j].address);
            }
            fprintf(out, "\n");
        }
    }
}

/* One frame as vsp_frame_label names it, with " (file:line)" after a function whose line is known. */
static void frame_label(char *buf, size_t len, const struct vsp_frame_info *f)
{
    vsp_frame_label(f, buf, len);
    size_t n = strlen(buf);
    if (f->function[0] && f->file[0] && n < len)
        snprintf(buf + n, len - n, " (%s:%d)", f->file, f->line);
}

/* A finding's call site: its innermost frame, and when another finding's different stack shares
 * that frame, the frames out to the innermost one that differs (at most 3 shown, "..." between),
 * so that two stacks through the same helper are told apart. */
void vsp_site_name(char *buf, size_t len, const struct vsp_analysis *a, struct vsp_symbolizer *sym, uint32_t id)
{
    buf[0] = 0;
    const struct vsp_stack *st = vsp_analysis_stack(a, id);
    if (!st || !st->nframes)
        return;
    unsigned upto = 0; /* the index of the innermost frame that tells it apart */
    for (size_t i = 0; i < a->nfindings; i++) {
        const struct vsp_stack *o = vsp_analysis_stack(a, a->findings[i].stack_id);
        if (!o || o == st || !o->nframes || o->frames[0] != st->frames[0])
            continue;
        unsigned k = 0;
        while (k < st->nframes && k < o->nframes && st->frames[k] == o->frames[k])
            k++;
        if (k < st->nframes && k > upto)
            upto = k;
    }
    struct vsp_frame_info fi[MAX_INLINE];
    char f[1100];
    size_t n = 0;
    for (unsigned k = 0; k <= upto; k++) {
        if (k > 0 && k < upto - 1 && upto > 2) {
            if (k == 1)
                n += (size_t)snprintf(buf + n, n < len ? len - n : 0, " <- ...");
            continue;
        }
        vsp_sym_frame(sym, st, k, fi, MAX_INLINE);
        frame_label(f, sizeof f, &fi[0]); /* the innermost expansion: the line of the call */
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", k ? " <- " : "", f);
        if (n >= len)
            break;
    }
}

static const char *kind_colour(int k)
{
    switch (k) {
    case VSP_F_LEAK: return "\033[1;31m";
    case VSP_F_HOST_FALLBACK: return "\033[1;33m";
    case VSP_F_OOM: return "\033[1;35m";
    case VSP_F_FRAGMENTATION: return "\033[1;36m";
    default: return "\033[1;31m";
    }
}

void vsp_report_text(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                        int color)
{
    char b1[32], b2[32], b3[32];
    fprintf(out, "%svramspy report: %s%s\n", color ? "\033[1m" : "", path, color ? "\033[0m" : "");
    fprintf(out, "process: pid %u, %s", a->pid, a->exe ? a->exe : "?");
    for (int i = 1; i < a->argc; i++)
        fprintf(out, " %s", a->argv[i]);
    if (a->have_host && a->rank >= 0)
        fprintf(out, " (host %s, rank %d of %d)", a->host ? a->host : "?", a->rank, a->world_size);
    fprintf(out, "\ntrace: %s, %llu events, %llu dropped\n",
            a->in_progress ? "IN PROGRESS (the process is still running)" : a->complete ? "complete" : "INCOMPLETE",
            (unsigned long long)a->events, (unsigned long long)a->dropped);
    vsp_human_bytes(b1, sizeof b1, a->peak_bytes);
    vsp_human_bytes(b2, sizeof b2, a->live_bytes);
    fprintf(out, "totals: %llu allocations (%llu of host memory), %llu frees, %llu failed; peak device %s; "
                 "live at end: %llu allocations, %s\n",
            (unsigned long long)a->allocations, (unsigned long long)a->host_allocations,
            (unsigned long long)a->frees, (unsigned long long)a->failed, b1,
            (unsigned long long)a->live_allocations, b2);
    if (a->coverage.have) {
        const struct vsp_coverage *cv = &a->coverage;
        uint64_t own = cv->used_bytes > cv->baseline_bytes ? cv->used_bytes - cv->baseline_bytes : 0;
        unsigned pct = own ? (unsigned)((cv->traced_bytes >= own ? own : cv->traced_bytes) * 100 / own) : 100;
        vsp_human_bytes(b1, sizeof b1, cv->used_bytes);
        vsp_human_bytes(b2, sizeof b2, cv->baseline_bytes);
        vsp_human_bytes(b3, sizeof b3, cv->untracked_bytes);
        fprintf(out, "coverage: the trace accounts for %u%% of this process's device memory (%s: %s used, %s "
                     "context, %s untracked%s)\n",
                pct, cv->source == VSP_USAGE_NVML ? "NVML" : "device-wide", b1, b2, b3,
                cv->source == VSP_USAGE_NVML ? "" : "; other processes count too");
    }
    for (size_t i = 0; i < a->npools; i++) {
        const struct vsp_pool_row *p = &a->pools[i];
        char b4[32];
        vsp_human_bytes(b1, sizeof b1, p->reserved_current == UINT64_MAX ? 0 : p->reserved_current);
        vsp_human_bytes(b2, sizeof b2, p->reserved_high == UINT64_MAX ? 0 : p->reserved_high);
        vsp_human_bytes(b3, sizeof b3, p->used_current == UINT64_MAX ? 0 : p->used_current);
        vsp_human_bytes(b4, sizeof b4, p->used_high == UINT64_MAX ? 0 : p->used_high);
        fprintf(out, "pool 0x%llx (%s): reserved %s (most %s), used %s (most %s)\n", (unsigned long long)p->pool,
                p->host ? "host-located" : "device", b1, b2, b3, b4);
    }
    if (a->npurposes) {
        int host = 0;
        for (size_t i = 0; i < a->npurposes; i++)
            host |= a->purposes[i].host_live_bytes != 0;
        fprintf(out, "\nby purpose:%-20s %10s %12s %12s %12s\n", "", "device end", "device peak", "allocated",
                host ? "host end" : "");
        for (size_t i = 0; i < a->npurposes; i++) {
            char b4[32] = "";
            vsp_human_bytes(b1, sizeof b1, a->purposes[i].live_bytes);
            vsp_human_bytes(b2, sizeof b2, a->purposes[i].peak_bytes);
            vsp_human_bytes(b3, sizeof b3, a->purposes[i].allocated);
            if (host)
                vsp_human_bytes(b4, sizeof b4, a->purposes[i].host_live_bytes);
            fprintf(out, "  %-30s %10s %12s %12s %12s\n", a->purposes[i].label, b1, b2, b3, b4);
        }
    }
    if (!a->nfindings)
        fprintf(out, "\nno findings\n");
    if (a->suppressed)
        fprintf(out, "(%llu finding%s suppressed by --suppress / --min-leak)\n", (unsigned long long)a->suppressed,
                a->suppressed == 1 ? "" : "s");
    for (size_t i = 0; i < a->nfindings; i++) {
        const struct vsp_finding *f = &a->findings[i];
        const char *c0 = color ? kind_colour(f->kind) : "", *c1 = color ? "\033[0m" : "";
        fprintf(out, "\n");
        switch (f->kind) {
        case VSP_F_LEAK:
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            fprintf(out, "%sLEAK%s %s in %llu %s allocation%s by %s\n", c0, c1, b1, (unsigned long long)f->count,
                    vsp_memory_name(f->memory), f->count == 1 ? "" : "s", vsp_api_name(f->api));
            break;
        case VSP_F_HOST_FALLBACK:
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            fprintf(out, "%sHOST FALLBACK%s %s of %s memory in %llu allocation%s by %s%s\n", c0, c1, b1,
                    vsp_memory_name(f->memory), (unsigned long long)f->count, f->count == 1 ? "" : "s",
                    vsp_api_name(f->api), f->after_oom ? ", right after a device out-of-memory" : "");
            if (f->denied)
                fprintf(out, "    (denied by VRAMSPY_ENFORCE=vram-only: the call failed with out-of-memory and was not performed)\n");
            break;
        case VSP_F_OOM:
        case VSP_F_FRAGMENTATION:
            vsp_human_bytes(b1, sizeof b1, f->requested);
            if (f->free_bytes != UINT64_MAX) {
                vsp_human_bytes(b2, sizeof b2, f->free_bytes);
                vsp_human_bytes(b3, sizeof b3, f->total_bytes);
            } else {
                snprintf(b2, sizeof b2, "unknown");
                snprintf(b3, sizeof b3, "unknown");
            }
            fprintf(out, "%s%s%s %s of %s failed %llu time%s (device free %s of %s)%s\n", c0,
                    f->kind == VSP_F_OOM ? "OUT OF MEMORY" : "FRAGMENTATION", c1, vsp_api_name(f->api), b1,
                    (unsigned long long)f->count, f->count == 1 ? "" : "s", b2, b3,
                    f->kind == VSP_F_FRAGMENTATION ? ": enough memory was free, but not in one piece" : "");
            break;
        case VSP_F_UNTRACKED:
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            vsp_human_bytes(b2, sizeof b2, f->limit);
            fprintf(out, "%sUNTRACKED%s %s of this process's device memory was allocated where no hook saw it "
                         "(above the %s limit): see \"What the shim cannot see\"\n",
                    c0, c1, b1, b2);
            break;
        case VSP_F_PEAK:
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            vsp_human_bytes(b2, sizeof b2, f->limit);
            fprintf(out, "%sPEAK%s device memory peaked at %s, above the %s budget; the allocation that reached it, by %s:\n",
                    c0, c1, b1, b2, vsp_api_name(f->api));
            break;
        case VSP_F_INVALID_FREE:
            fprintf(out, "%sINVALID FREE%s %s(0x%llx): %s, %llu time%s\n", c0, c1, vsp_api_name(f->api),
                    (unsigned long long)f->address, f->double_free ? "double free" : "unknown pointer",
                    (unsigned long long)f->count, f->count == 1 ? "" : "s");
            break;
        case VSP_F_CRASH:
            if (f->signal)
                fprintf(out, "%sCRASH%s the process was ended by signal %d (%s)\n", c0, c1, f->signal,
                        vsp_signal_name(f->signal));
            else
                fprintf(out, "%sCRASH%s the trace has no end and the process is gone: it was killed, crashed or "
                             "called _exit\n", c0, c1);
            break;
        case VSP_F_PLAN:
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            vsp_human_bytes(b2, sizeof b2, f->planned);
            if (!strcmp(f->purpose, "headroom"))
                fprintf(out, "%sPLAN%s headroom risk HIGH: %s used (planned or measured, the larger) against %s "
                             "usable device memory\n", c0, c1, b1, b2);
            else if (f->planned)
                fprintf(out, "%sPLAN%s %s measured %s against %s planned: %+.1f%%, outside the +-%g%% tolerance\n",
                        c0, c1, f->purpose, b1, b2, f->deviation * 100, f->tolerance * 100);
            else
                fprintf(out, "%sPLAN%s %s measured %s against none planned\n", c0, c1, f->purpose, b1);
            break;
        case VSP_F_ALLOC_ERROR:
            fprintf(out, "%sALLOCATION ERROR%s %s failed %llu time%s with %d (%s): not out of memory, the call "
                         "could not allocate at all\n", c0, c1, vsp_api_name(f->api), (unsigned long long)f->count,
                    f->count == 1 ? "" : "s", f->result, vsp_result_name(f->api, f->result));
            break;
        }
        if (f->stack_id && f->kind != VSP_F_CRASH) {
            char site[2400];
            vsp_site_name(site, sizeof site, a, sym, f->stack_id);
            if (site[0])
                fprintf(out, "  at %s\n", site);
        }
        if (f->uncertain)
            fprintf(out, "    (uncertain: %llu events lost)\n", (unsigned long long)(a->dropped + a->torn));
        if (f->kind == VSP_F_CRASH && !f->stack_id)
            continue;
        if (f->kind == VSP_F_CRASH)
            fprintf(out, "    the last call it recorded:\n");
        text_stack(out, sym, a, f->stack_id);
        if (f->kind == VSP_F_INVALID_FREE && f->double_free) {
            fprintf(out, "  allocated at:\n");
            text_stack(out, sym, a, f->alloc_stack_id);
            fprintf(out, "  first freed at:\n");
            text_stack(out, sym, a, f->first_free_stack_id);
        }
    }
    const char *ws = vsp_sym_warnings(sym);
    if (*ws)
        fprintf(out, "\nwarnings:\n%s", ws);
    if (a->dropped + a->torn) {
        char line[400];
        loss_warning(line, sizeof line, a);
        fprintf(out, "\nwarning: %s\n", line);
    }
    if (a->in_progress)
        fprintf(out, "\nwarning: the process is still running: the trace is in progress; its %llu live allocations "
                     "are live, not leaked\n", (unsigned long long)a->live_allocations);
    else if (!a->complete)
        fprintf(out, "\nwarning: the trace is incomplete (the process was killed, crashed or called _exit, or the "
                     "file was cut short); everything it holds was analysed\n");
}

