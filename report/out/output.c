/* Rendering of an analysis: JSON (schema vramspy-report/1, docs/report.md) and text. */
#include "report/out/output.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim/common/purposes.h"

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
                    int r = vsp_purposes_match_frame(rules, fi[j].function, fi[j].module,
                                                     fi[j].python ? fi[j].path : NULL);
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

int vsp_utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    int n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3) {
        unsigned cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    } else if (n == 4) {
        unsigned cp = (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12;
        if (cp < 0x10000 || cp > 0x10ffff)
            return 0;
    }
    return n;
}

char *vsp_escape_bytes(const char *str, int control)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s);
    char *out = malloc(4 * n + 1), *o = out;
    if (!out)
        return NULL;
    while (*s) {
        int k = vsp_utf8_seq(s);
        if (!k || (control && (*s < 0x20 || *s == 0x7f))) {
            o += sprintf(o, "\\x%02x", *s);
            s++;
            continue;
        }
        memcpy(o, s, (size_t)k);
        o += k;
        s += k;
    }
    *o = 0;
    return out;
}

json_t *vsp_json_text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s); /* NULL when s is not UTF-8 */
    if (j)
        return j;
    char *e = vsp_escape_bytes(s, 0);
    j = json_string(e ? e : "?");
    free(e);
    return j ? j : json_string("?");
}

void vsp_fputs_text(FILE *out, const char *s)
{
    char *e = vsp_escape_bytes(s, 1);
    fputs(e ? e : "?", out);
    free(e);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? vsp_json_text(s) : json_null();
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
    if (f->python) { /* issue 21: a Python frame is its line: "Model.load_weights (model.py:42)" */
        snprintf(buf, len, "%s (%s:%d)", f->function, f->file, f->line);
    } else if (f->function[0]) {
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
            if (fi[k].python) { /* issue 21: {"python": true, "function", "file", "line"}, + "path" */
                json_object_set_new(f, "python", json_true());
                json_object_set_new(f, "function", json_string(fi[k].function));
                json_object_set_new(f, "file", json_string(fi[k].file));
                json_object_set_new(f, "path", str_or_null(fi[k].path));
                json_object_set_new(f, "line", fi[k].line ? json_integer(fi[k].line) : json_null());
                json_array_append_new(arr, f);
                continue;
            }
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
        json_array_append_new(argv, vsp_json_text(a->argv[i] ? a->argv[i] : ""));
    json_object_set_new(p, "argv", argv);
    if (a->have_host) { /* where it ran, its place in a job (HOST record) */
        json_object_set_new(p, "host", str_or_null(a->host));
        json_object_set_new(p, "rank", a->rank >= 0 ? json_integer(a->rank) : json_null());
        json_object_set_new(p, "local_rank", a->local_rank >= 0 ? json_integer(a->local_rank) : json_null());
        json_object_set_new(p, "world_size", a->world_size >= 0 ? json_integer(a->world_size) : json_null());
    }
    json_object_set_new(r, "process", p);
    json_t *t = json_object();
    json_object_set_new(t, "path", vsp_json_text(path));
    json_object_set_new(t, "complete", json_boolean(a->complete));
    json_object_set_new(t, "events", json_integer((json_int_t)a->events));
    json_object_set_new(t, "dropped", json_integer((json_int_t)a->dropped));
    json_object_set_new(t, "torn", json_integer((json_int_t)a->torn));
    json_object_set_new(t, "in_progress", json_boolean(a->in_progress));
    json_object_set_new(t, "clock", json_string(a->coarse_clock ? "coarse" : "precise"));
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
        json_object_set_new(co, "pool_cached_bytes", json_integer((json_int_t)cv->pool_cached_bytes));
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
        case VSP_F_CACHED:
            json_object_set_new(o, "held_by", json_string(f->held_by ? f->held_by : "?"));
            json_object_set_new(o, "memory", json_string(vsp_memory_name(f->memory)));
            json_object_set_new(o, "count", json_integer((json_int_t)f->count));
            json_object_set_new(o, "bytes", json_integer((json_int_t)f->bytes));
            break;
        case VSP_F_GROWTH:
            json_object_set_new(o, "memory", json_string(vsp_memory_name(f->memory)));
            json_object_set_new(o, "count", json_integer((json_int_t)f->count));
            json_object_set_new(o, "bytes", json_integer((json_int_t)f->bytes));
            json_object_set_new(o, "bytes_at_half", json_integer((json_int_t)f->at_half));
            json_object_set_new(o, "bytes_high", json_integer((json_int_t)f->high));
            json_object_set_new(o, "rate_bytes_per_s", json_real(f->rate));
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
            if (f->run.chunks) {
                const struct vsp_chunk_run *cr = &f->run;
                json_t *j = json_object();
                json_object_set_new(j, "chunks", json_integer((json_int_t)cr->chunks));
                json_object_set_new(j, "bytes", json_integer((json_int_t)cr->bytes));
                json_object_set_new(j, "chunk_bytes", cr->chunk_bytes ? json_integer((json_int_t)cr->chunk_bytes) : json_null());
                json_object_set_new(j, "mapped", json_integer((json_int_t)cr->mapped));
                json_object_set_new(j, "released_chunks", json_integer((json_int_t)cr->released_chunks));
                json_object_set_new(j, "released_bytes", json_integer((json_int_t)cr->released_bytes));
                json_object_set_new(j, "released_created_ns", json_integer((json_int_t)cr->released_created_ns));
                json_object_set_new(j, "released_ns", json_integer((json_int_t)cr->released_ns));
                json_object_set_new(o, "chunk_run", j);
            }
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
            json_object_set_new(o, "purpose", vsp_json_text(f->purpose));
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
            json_object_set_new(row, "label", vsp_json_text(a->purposes[i].label));
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
                vsp_fputs_text(out, fi[j].function);
                fprintf(out, "%s", fi[j].inlined ? " [inlined]" : "");
                if (fi[j].file[0]) {
                    fprintf(out, " (");
                    vsp_fputs_text(out, fi[j].file);
                    fprintf(out, ":%d)", fi[j].line);
                } else if (fi[j].module) {
                    fprintf(out, " (");
                    vsp_fputs_text(out, fi[j].module);
                    fprintf(out, "+0x%llx)", (unsigned long long)fi[j].offset);
                }
            } else if (fi[j].module) {
                vsp_fputs_text(out, fi[j].module);
                fprintf(out, "+0x%llx", (unsigned long long)fi[j].offset);
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
    if (f->function[0] && f->file[0] && !f->python && n < len)
        snprintf(buf + n, len - n, " (%s:%d)", f->file, f->line);
}

/* The findings' distinct stacks by prefix: how many distinct stacks begin with each prefix of
 * frames (a 64-bit hash of the prefix, open addressing). A stack's prefix of length L that another
 * stack shares is the place they go apart at L or later; one pass over every finding's frames
 * builds it and a lookup per frame answers a site, so the text report stays linear in its
 * findings (the pairwise comparison it replaces took 59 s for 16,384 leak stacks). */
struct vsp_site_index {
    size_t cap;       /* power of two */
    uint64_t *keys;   /* prefix hash | 1 (0: empty) */
    uint32_t *counts; /* distinct stacks with that prefix */
};

static uint64_t g_site_work;

uint64_t vsp_site_work(void) { return g_site_work; }

static uint64_t prefix_hash(uint64_t h, uint64_t frame)
{
    h ^= frame + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | 1;
}

/* The slot of key (its own, or the empty one where it goes). */
static size_t site_slot(const struct vsp_site_index *x, uint64_t key)
{
    size_t i = key & (x->cap - 1);
    while (x->keys[i] && x->keys[i] != key)
        i = (i + 1) & (x->cap - 1);
    g_site_work++;
    return i;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

static struct vsp_site_index *site_index(const struct vsp_analysis *a)
{
    uint32_t *ids = calloc(a->nfindings ? a->nfindings : 1, sizeof *ids);
    size_t nid = 0, total = 0;
    if (!ids)
        return NULL;
    for (size_t i = 0; i < a->nfindings; i++)
        if (a->findings[i].stack_id)
            ids[nid++] = a->findings[i].stack_id;
    if (nid)
        qsort(ids, nid, sizeof *ids, cmp_u32);
    for (size_t i = 0; i < nid; i++) {
        const struct vsp_stack *st = (i && ids[i] == ids[i - 1]) ? NULL : vsp_analysis_stack(a, ids[i]);
        total += st ? st->nframes + 1 : 0;
    }
    size_t cap = 64;
    while (cap < 2 * total)
        cap *= 2;
    struct vsp_site_index *x = calloc(1, sizeof *x + cap * (sizeof *x->keys + sizeof *x->counts));
    if (!x) {
        free(ids);
        return NULL;
    }
    x->cap = cap;
    x->keys = (uint64_t *)(x + 1);
    x->counts = (uint32_t *)(x->keys + cap);
    for (size_t i = 0; i < nid; i++) {
        const struct vsp_stack *st = (i && ids[i] == ids[i - 1]) ? NULL : vsp_analysis_stack(a, ids[i]);
        if (!st || !st->nframes)
            continue;
        /* stacks of the same frames (distinct ids) count once: nothing tells them apart; the whole
         * stack's key (its prefix hash marked by one more step) says whether it was seen */
        uint64_t h = 0;
        for (uint32_t k = 0; k < st->nframes; k++)
            h = prefix_hash(h, st->frames[k]);
        size_t whole = site_slot(x, prefix_hash(h, UINT64_MAX));
        if (x->keys[whole])
            continue;
        x->keys[whole] = prefix_hash(h, UINT64_MAX);
        h = 0;
        for (uint32_t k = 0; k < st->nframes; k++) {
            h = prefix_hash(h, st->frames[k]);
            size_t s = site_slot(x, h);
            x->keys[s] = h;
            x->counts[s]++;
        }
    }
    free(ids);
    return x;
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
    /* built once the findings are final (after --suppress), on the first site asked for */
    struct vsp_analysis *mut = (struct vsp_analysis *)a;
    if (!mut->sites)
        mut->sites = site_index(a);
    unsigned upto = 0; /* the index of the innermost frame that tells it apart: the longest prefix
                          shorter than the stack that another stack shares */
    uint64_t h = 0;
    for (unsigned k = 0; a->sites && k + 1 < st->nframes; k++) {
        h = prefix_hash(h, st->frames[k]);
        size_t s = site_slot(a->sites, h);
        if (!a->sites->keys[s] || a->sites->counts[s] < 2)
            break;
        upto = k + 1;
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
        char *fe = vsp_escape_bytes(f, 1);
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", k ? " <- " : "", fe ? fe : f);
        free(fe);
        if (n >= len)
            return;
    }
    /* the innermost Python frame (issue 21), beside the native call site, unless shown already */
    for (unsigned k = 0; k < st->nframes; k++) {
        if (!VSP_PYFRAME_IS(st->frames[k]))
            continue;
        if (k <= upto)
            break;
        vsp_sym_frame(sym, st, k, fi, MAX_INLINE);
        frame_label(f, sizeof f, &fi[0]);
        snprintf(buf + n, n < len ? len - n : 0, ", Python: %s", f);
        break;
    }
}

/* A failed cuMemCreate's chunk run (issue 23: PyTorch's 400 GiB request with expandable segments
 * failed at its 7,128th 20 MiB chunk; only the chunk's size was said). */
static void chunk_run_text(FILE *out, const struct vsp_chunk_run *r, uint64_t failed)
{
    char b1[32], b2[32], b3[32], b4[32];
    vsp_human_bytes(b1, sizeof b1, r->released_bytes);
    vsp_human_bytes(b2, sizeof b2, r->chunk_bytes);
    vsp_human_bytes(b3, sizeof b3, r->released_bytes + failed);
    vsp_human_bytes(b4, sizeof b4, failed);
    if (r->released_chunks)
        fprintf(out, "    %llu chunk%s%s%s (%s), created%s in the %.3f s before this failure, %s released within %.3f s "
                     "after it: one request of at least %s was being mapped chunk by chunk (as PyTorch's "
                     "expandable segments do), not only the %s chunk that failed\n",
                (unsigned long long)r->released_chunks, r->released_chunks == 1 ? "" : "s",
                r->chunk_bytes ? " of " : "", r->chunk_bytes ? b2 : "", b1,
                r->mapped >= r->released_chunks ? " and mapped" : "", r->released_created_ns / 1e9,
                r->released_chunks == 1 ? "was" : "were", r->released_ns / 1e9, b3, b4);
    if (r->released_chunks == r->chunks)
        return;
    vsp_human_bytes(b1, sizeof b1, r->bytes);
    fprintf(out, "    before it, this thread had created %llu chunk%s%s%s of physical memory (%s, %llu cuMemMap "
                 "call%s) since it last released one%s\n",
            (unsigned long long)r->chunks, r->chunks == 1 ? "" : "s", r->chunk_bytes ? " of " : "",
            r->chunk_bytes ? b2 : "", b1, (unsigned long long)r->mapped, r->mapped == 1 ? "" : "s",
            r->released_chunks ? "" : "; none released after it");
}

static const char *kind_colour(int k)
{
    switch (k) {
    case VSP_F_LEAK: return "\033[1;31m";
    case VSP_F_HOST_FALLBACK: return "\033[1;33m";
    case VSP_F_OOM: return "\033[1;35m";
    case VSP_F_FRAGMENTATION: return "\033[1;36m";
    case VSP_F_CACHED: return "\033[1;32m";
    case VSP_F_GROWTH: return "\033[1;35m";
    default: return "\033[1;31m";
    }
}

void vsp_report_text(FILE *out, const char *path, const struct vsp_analysis *a, struct vsp_symbolizer *sym,
                        int color)
{
    char b1[32], b2[32], b3[32];
    /* names from the trace and the command line are any bytes: control and non-UTF-8 bytes as \xNN */
    fprintf(out, "%svramspy report: ", color ? "\033[1m" : "");
    vsp_fputs_text(out, path);
    fprintf(out, "%s\nprocess: pid %u, ", color ? "\033[0m" : "", a->pid);
    vsp_fputs_text(out, a->exe ? a->exe : "?");
    for (int i = 1; i < a->argc; i++) {
        fputc(' ', out);
        vsp_fputs_text(out, a->argv[i] ? a->argv[i] : "");
    }
    if (a->have_host && a->rank >= 0) {
        fprintf(out, " (host ");
        vsp_fputs_text(out, a->host ? a->host : "?");
        fprintf(out, ", rank %d of %d)", a->rank, a->world_size);
    }
    fprintf(out, "\ntrace: %s, %llu event%s, %llu dropped%s\n",
            a->in_progress ? "IN PROGRESS (the process is still running)" : a->complete ? "complete" : "INCOMPLETE",
            (unsigned long long)a->events, a->events == 1 ? "" : "s", (unsigned long long)a->dropped,
            a->coarse_clock ? "; times at the kernel's tick (VRAMSPY_CLOCK=coarse)" : "");
    vsp_human_bytes(b1, sizeof b1, a->peak_bytes);
    vsp_human_bytes(b2, sizeof b2, a->live_bytes);
    fprintf(out, "totals: %llu allocation%s (%llu of host memory), %llu free%s, %llu failed; peak device %s; "
                 "live at end: %llu allocation%s, %s\n",
            (unsigned long long)a->allocations, a->allocations == 1 ? "" : "s",
            (unsigned long long)a->host_allocations, (unsigned long long)a->frees, a->frees == 1 ? "" : "s",
            (unsigned long long)a->failed, b1, (unsigned long long)a->live_allocations,
            a->live_allocations == 1 ? "" : "s", b2);
    if (a->coverage.have) {
        const struct vsp_coverage *cv = &a->coverage;
        uint64_t own = cv->used_bytes > cv->baseline_bytes ? cv->used_bytes - cv->baseline_bytes : 0;
        uint64_t known = cv->traced_bytes + cv->pool_cached_bytes;
        unsigned pct = own ? (unsigned)((known >= own ? own : known) * 100 / own) : 100;
        vsp_human_bytes(b1, sizeof b1, cv->used_bytes);
        vsp_human_bytes(b2, sizeof b2, cv->baseline_bytes);
        vsp_human_bytes(b3, sizeof b3, cv->untracked_bytes);
        fprintf(out, "coverage: the trace accounts for %u%% of this process's device memory (%s: %s used, %s "
                     "context, %s untracked%s)\n",
                pct, cv->source == VSP_USAGE_NVML ? "NVML" : "device-wide", b1, b2, b3,
                cv->source == VSP_USAGE_NVML ? "" : "; other processes count too");
        char b4[32], b5[32];
        vsp_human_bytes(b4, sizeof b4, cv->traced_bytes);
        vsp_human_bytes(b5, sizeof b5, cv->pool_cached_bytes);
        fprintf(out, "device memory at the widest gap: %s = %s context + %s live allocations", b1, b2, b4);
        if (cv->pool_cached_bytes)
            fprintf(out, " + %s cached by stream-ordered pools", b5);
        fprintf(out, " + %s untracked\n", b3);
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
        if (f->kind != VSP_F_CACHED || i == 0 || a->findings[i - 1].kind != VSP_F_CACHED ||
            a->findings[i - 1].held_by != f->held_by || a->findings[i - 1].memory != f->memory)
            fprintf(out, "\n"); /* a holder's call sites stay under its headline */
        switch (f->kind) {
        case VSP_F_LEAK:
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            fprintf(out, "%sLEAK%s %s in %llu %s allocation%s by %s\n", c0, c1, b1, (unsigned long long)f->count,
                    vsp_memory_name(f->memory), f->count == 1 ? "" : "s", vsp_api_name(f->api));
            break;
        case VSP_F_CACHED: {
            /* one headline per holder and memory kind (findings are sorted by holder), then its
             * call sites, one line each: the stacks are in the JSON */
            if (i == 0 || a->findings[i - 1].kind != VSP_F_CACHED || a->findings[i - 1].held_by != f->held_by ||
                a->findings[i - 1].memory != f->memory) {
                uint64_t bytes = 0, count = 0;
                for (size_t k = i; k < a->nfindings && a->findings[k].kind == VSP_F_CACHED &&
                                   a->findings[k].held_by == f->held_by && a->findings[k].memory == f->memory; k++) {
                    bytes += a->findings[k].bytes;
                    count += a->findings[k].count;
                }
                vsp_human_bytes(b1, sizeof b1, bytes);
                fprintf(out, "%sHELD AT EXIT%s %s in %llu %s allocation%s by the %s (not a leak: it holds them "
                             "until the process exits)\n",
                        c0, c1, b1, (unsigned long long)count, vsp_memory_name(f->memory), count == 1 ? "" : "s",
                        f->held_by ? f->held_by : "?");
            }
            char site[2400];
            vsp_site_name(site, sizeof site, a, sym, f->stack_id);
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            fprintf(out, "  %s in %llu by %s at %s\n", b1, (unsigned long long)f->count, vsp_api_name(f->api),
                    site[0] ? site : "(no stack)");
            continue;
        }
        case VSP_F_GROWTH: {
            char site[2400];
            vsp_human_bytes(b1, sizeof b1, f->bytes);
            vsp_human_bytes(b2, sizeof b2, (uint64_t)f->rate);
            vsp_site_name(site, sizeof site, a, sym, f->stack_id);
            fprintf(out, "%sGROWTH%s +%s over the second half (%s/s) by %s at %s\n", c0, c1, b1, b2,
                    vsp_api_name(f->api), site[0] ? site : "(no stack)");
            vsp_human_bytes(b1, sizeof b1, f->at_half);
            vsp_human_bytes(b2, sizeof b2, f->high);
            fprintf(out, "    its live %s memory kept reaching new highs: %s at half time, %s at the end\n",
                    vsp_memory_name(f->memory), b1, b2);
            text_stack(out, sym, a, f->stack_id);
            continue;
        }
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
            if (f->run.chunks)
                chunk_run_text(out, &f->run, f->requested);
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

