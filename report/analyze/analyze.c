/* Streaming analysis of one trace (see analyze.h). Allocation/free pairing is by address within
 * an address class (device pointers, pinned host, registered host, arrays, mipmapped arrays,
 * physical handles) derived from the API, not from what the shim guessed, so a trace is judged on
 * what the program called. */
#include "report/analyze/analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/read/trace_reader.h"

static const char *const json_names[VSP_F_COUNT_] = {"leak", "host_fallback", "oom", "fragmentation",
                                                      "invalid_free", "peak", "crash", "alloc_error",
                                                      "untracked", "plan", "cached", "growth"};
static const char *const cli_names[VSP_F_COUNT_] = {"leak", "host-fallback", "oom", "fragmentation",
                                                     "invalid-free", "peak", "crash", "alloc-error",
                                                     "untracked", "plan", "cached", "growth"};

const char *vsp_finding_json_name(int k) { return k >= 0 && k < VSP_F_COUNT_ ? json_names[k] : "unknown"; }
const char *vsp_finding_cli_name(int k) { return k >= 0 && k < VSP_F_COUNT_ ? cli_names[k] : "unknown"; }

int vsp_finding_rank(int k)
{
    /* leaks first; what frameworks hold at exit right after them; then growth; the rest as numbered */
    return k == VSP_F_LEAK ? 0 : k == VSP_F_CACHED ? 1 : k == VSP_F_GROWTH ? 2 : 3 + k;
}

/* ---- a u64 -> u64 open-addressing map with backward-shift deletion ---- */

struct map {
    uint64_t *keys;  /* stored as key+1 so that 0 means empty (keys are never UINT64_MAX) */
    uint64_t *vals;
    size_t cap, n;
};

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

static int map_grow(struct map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    uint64_t *nk = calloc(ncap, sizeof *nk), *nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = mix(m->keys[i]) & (ncap - 1);
        while (nk[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

static uint64_t *map_get(struct map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    uint64_t k = key + 1;
    for (size_t i = mix(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k)
            return &m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static uint64_t *map_put(struct map *m, uint64_t key, int *created)
{
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) < 0)
        return NULL;
    uint64_t k = key + 1;
    size_t i = mix(k) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    *created = !m->keys[i];
    if (*created) {
        m->keys[i] = k;
        m->vals[i] = 0;
        m->n++;
    }
    return &m->vals[i];
}

static int map_del(struct map *m, uint64_t key)
{
    if (!m->cap)
        return 0;
    uint64_t k = key + 1;
    size_t i = mix(k) & (m->cap - 1);
    while (m->keys[i] != k) {
        if (!m->keys[i])
            return 0;
        i = (i + 1) & (m->cap - 1);
    }
    /* backward-shift: move later members of the cluster into the hole when they may */
    size_t j = i;
    for (;;) {
        m->keys[i] = 0;
        for (;;) {
            j = (j + 1) & (m->cap - 1);
            if (!m->keys[j]) {
                m->n--;
                return 1;
            }
            size_t home = mix(m->keys[j]) & (m->cap - 1);
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        i = j;
    }
}

static void map_free(struct map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- classification ---- */

enum { CL_NONE = 0, CL_DEVPTR, CL_HOST, CL_REGISTERED, CL_ARRAY, CL_MIPMAP, CL_PHYSICAL, CL_IMPORTED, CL_EXTERNAL };

static int api_class(unsigned api)
{
    switch (api) {
    case VSP_API_cudaMalloc: case VSP_API_cudaMallocManaged: case VSP_API_cudaMallocPitch:
    case VSP_API_cudaMalloc3D: case VSP_API_cudaMallocAsync: case VSP_API_cudaMallocAsync_ptsz:
    case VSP_API_cudaMallocFromPoolAsync: case VSP_API_cudaMallocFromPoolAsync_ptsz:
    case VSP_API_cudaFree: case VSP_API_cudaFreeAsync: case VSP_API_cudaFreeAsync_ptsz:
    case VSP_API_cuMemAlloc_v2: case VSP_API_cuMemAllocPitch_v2: case VSP_API_cuMemAllocManaged:
    case VSP_API_cuMemFree_v2: case VSP_API_cuMemAllocAsync: case VSP_API_cuMemAllocAsync_ptsz:
    case VSP_API_cuMemAllocFromPoolAsync: case VSP_API_cuMemAllocFromPoolAsync_ptsz:
    case VSP_API_cuMemFreeAsync: case VSP_API_cuMemFreeAsync_ptsz:
        return CL_DEVPTR;
    case VSP_API_cudaMallocHost: case VSP_API_cudaHostAlloc: case VSP_API_cudaFreeHost:
    case VSP_API_cuMemAllocHost_v2: case VSP_API_cuMemHostAlloc: case VSP_API_cuMemFreeHost:
    case VSP_API_cuMemAllocHost:
        return CL_HOST;
    case VSP_API_cudaHostRegister: case VSP_API_cudaHostUnregister:
    case VSP_API_cuMemHostRegister_v2: case VSP_API_cuMemHostUnregister: case VSP_API_cuMemHostRegister:
        return CL_REGISTERED;
    case VSP_API_cudaMallocArray: case VSP_API_cudaMalloc3DArray: case VSP_API_cudaFreeArray:
    case VSP_API_cuArrayCreate_v2: case VSP_API_cuArray3DCreate_v2: case VSP_API_cuArrayDestroy:
        return CL_ARRAY;
    case VSP_API_cudaMallocMipmappedArray: case VSP_API_cudaFreeMipmappedArray:
    case VSP_API_cuMipmappedArrayCreate: case VSP_API_cuMipmappedArrayDestroy:
        return CL_MIPMAP;
    case VSP_API_cuMemCreate: case VSP_API_cuMemRelease: case VSP_API_cuMemImportFromShareableHandle:
        return CL_PHYSICAL;
    case VSP_API_cuGraphAddMemAllocNode: case VSP_API_cuGraphAddMemFreeNode:
    case VSP_API_cudaGraphAddMemAllocNode: case VSP_API_cudaGraphAddMemFreeNode:
    case VSP_API_cuExternalMemoryGetMappedBuffer:
        return CL_DEVPTR;
    case VSP_API_cuIpcOpenMemHandle_v2: case VSP_API_cuIpcCloseMemHandle:
        return CL_IMPORTED; /* the same address may be live here under another class */
    case VSP_API_cuImportExternalMemory: case VSP_API_cuDestroyExternalMemory:
        return CL_EXTERNAL;
    default:
        return CL_NONE;
    }
}

static uint64_t addr_key(int cls, uint64_t ptr)
{
    return (ptr & ((1ull << 56) - 1)) | ((uint64_t)cls << 56);
}

/* A live allocation, packed for the map's value: index into a side array. */
struct live {
    uint64_t size;
    uint32_t bs;       /* its call site: index into a->by_stack (and the growth state) */
    uint32_t stack_id;
    uint16_t api;
    uint16_t label;
    uint8_t memory;
    int32_t device;
};

static uint64_t stack_key(uint16_t api, uint32_t stack_id, uint16_t label)
{
    return ((uint64_t)api << 48) | ((uint64_t)label << 32) | stack_id;
}

static uint16_t event_label(const struct vsp_rec_event *e)
{
    return (uint16_t)(e->eflags >> VSP_EVENT_LABEL_SHIFT);
}

/* Growth: per call site (a->by_stack entry), its live bytes, their high-water mark, and the mark
 * reached in each of GROWTH_BUCKETS equal spans of time from the first event on; when the run
 * outgrows the buckets their span doubles (pairs merged). The checkpoints at 40..100% of the run
 * then read the mark as of the bucket that holds them: exact to a bucket (1/32 to 1/16 of the
 * run), in constant memory per site. */
#define GROWTH_BUCKETS 32
struct site_growth {
    uint64_t live, high;
    uint64_t high_t, fail_t; /* when the mark last rose; when an allocation at the site last failed */
    uint8_t memory;
    uint64_t hw[GROWTH_BUCKETS]; /* the highest mark reached within each bucket (0: none) */
};

/* Freed addresses are remembered in a fixed direct-mapped cache, so that memory does not grow
 * with the number of distinct addresses ever freed: a second free of an address is reported as
 * double_free while its entry survives (up to FREED_SLOTS recent frees, fewer on collisions),
 * as unknown_pointer after that. */
#define FREED_SLOTS (1u << 18)

struct ctx {
    struct vsp_analysis *a;
    const struct vsp_analyze_opts *o;
    struct map live;        /* addr_key -> index into lv */
    struct live *lv;
    size_t nlv, caplv;
    uint64_t *freelist;     /* recycled lv slots */
    size_t nfree, capfree;
    uint64_t *freed;        /* direct-mapped cache of recently freed addr_keys (+1), see below */
    uint32_t (*freed_stacks)[2]; /* per slot: the allocation's stack and the free's stack */
    int saw_end;            /* an END record: the process finalised its trace */
    uint32_t last_stack;    /* the stack of the last event (a crash's last recorded call) */
    uint16_t last_api;
    struct map findings;    /* finding key -> index+1 */
    size_t capf;
    struct map stacks;      /* stack id -> index */
    size_t caps;
    struct map last_oom;    /* tid -> index into ooms */
    struct { uint64_t time, size; } *ooms;
    size_t nooms, capooms;
    /* tid -> index into runs: physical chunks (cuMemCreate) the thread created since it last
     * released one, and after a failure of cuMemCreate the finding its releases are counted into */
    struct map chunk_runs;
    struct chunk_state {
        uint64_t chunks, bytes, chunk_bytes, mapped;
        size_t finding;       /* index + 1 into findings while counting releases after a failure */
        uint64_t failed_ns;
    } *runs;
    size_t nruns, capruns;
    struct map chunk_born;  /* addr_key of a live physical allocation -> its creation time */
    uint64_t device_live;
    uint64_t kind_live[VSP_MEM_COUNT_];
    struct map by_stack;    /* (api<<32|stack) -> index into a->by_stack */
    size_t capbs;
    uint64_t event_index;
    /* VMM: a physical allocation lives until released and unmapped everywhere */
    struct vmm_mapping { uint64_t va, size, handle; } *vmm_maps; /* mapped ranges, by address */
    size_t nvmm, capvmm;
    struct map vmm_handle;  /* physical handle -> mappings | VMM_RELEASED */
    size_t cappools;
    struct site_growth *gs; /* per a->by_stack entry */
    size_t capgs;
    uint64_t g_t0, g_span, g_tlast; /* the first event's time, a growth bucket's span (0: no event
                                       yet), the last event's time */
};

#define VMM_RELEASED (1ull << 62)

#define GROW(ptr, n, cap)                                                           \
    do {                                                                            \
        if ((n) >= (cap)) {                                                         \
            size_t nc_ = (cap) ? (cap) * 2 : 64;                                    \
            void *np_ = realloc((ptr), nc_ * sizeof *(ptr));                        \
            if (!np_)                                                               \
                return -1;                                                          \
            (ptr) = np_;                                                            \
            (cap) = nc_;                                                            \
        }                                                                           \
    } while (0)

static int add_finding(struct ctx *c, int kind, const struct vsp_rec_event *e, uint64_t extra_key,
                       struct vsp_finding **out)
{
    uint64_t key = mix(((uint64_t)kind << 56) ^ ((uint64_t)e->api << 40) ^ ((uint64_t)e->memory << 32) ^
                       e->stack_id) ^ mix(extra_key);
    int created;
    uint64_t *slot = map_put(&c->findings, key, &created);
    if (!slot)
        return -1;
    if (created) {
        GROW(c->a->findings, c->a->nfindings, c->capf);
        struct vsp_finding *f = &c->a->findings[c->a->nfindings];
        memset(f, 0, sizeof *f);
        f->kind = kind;
        f->api = e->api;
        f->memory = e->memory;
        f->stack_id = e->stack_id;
        f->requested = f->free_bytes = f->total_bytes = UINT64_MAX;
        f->first_time_ns = e->time_ns;
        *slot = c->a->nfindings++;
    }
    *out = &c->a->findings[*slot];
    return 0;
}

/* Record the live bytes per kind at time t into the downsampled timeline, after kind `k`'s live
 * bytes changed (every change of c->kind_live is followed by a call, so within a sample only
 * that kind can have a new maximum). */
static void sample(struct ctx *c, uint64_t t, unsigned k)
{
    struct vsp_analysis *a = c->a;
    if (!a->samples)
        return;
    if (!a->first_time_ns)
        a->first_time_ns = t;
    a->last_time_ns = t;
    struct vsp_sample *last = a->nsamples ? &a->samples[a->nsamples - 1] : NULL;
    if (last && (a->sample_span_ns == 0 ? last->t0 == t : t < last->t0 + a->sample_span_ns)) {
        last->t1 = t;
        if (c->kind_live[k] > last->bytes[k])
            last->bytes[k] = c->kind_live[k];
        return;
    }
    if (a->nsamples == VSP_TIMELINE_MAX) {
        /* full: halve the resolution, keeping the maximum of each merged pair */
        for (size_t i = 0; i < VSP_TIMELINE_MAX / 2; i++) {
            struct vsp_sample *x = &a->samples[2 * i], *y = &a->samples[2 * i + 1];
            struct vsp_sample m = *x;
            m.t1 = y->t1;
            for (int j = 0; j < VSP_MEM_COUNT_; j++)
                m.bytes[j] = x->bytes[j] > y->bytes[j] ? x->bytes[j] : y->bytes[j];
            a->samples[i] = m;
        }
        a->nsamples = VSP_TIMELINE_MAX / 2;
        uint64_t span = (a->samples[a->nsamples - 1].t1 - a->samples[0].t0) / (VSP_TIMELINE_MAX / 2) + 1;
        a->sample_span_ns = span > a->sample_span_ns * 2 ? span : a->sample_span_ns * 2 + 1;
    }
    struct vsp_sample *s = &a->samples[a->nsamples++];
    s->t0 = s->t1 = t;
    memcpy(s->bytes, c->kind_live, sizeof s->bytes);
}

static void instant(struct ctx *c, const struct vsp_rec_event *e, int kind)
{
    struct vsp_analysis *a = c->a;
    if (!a->instants || a->ninstants >= VSP_INSTANTS_MAX)
        return;
    a->instants[a->ninstants++] = (struct vsp_instant){e->time_ns, kind, e->api, e->size, e->stack_id};
}

/* Double the growth buckets' span until time t falls in one; the bucket of t. */
static unsigned growth_bucket(struct ctx *c, uint64_t t)
{
    uint64_t d = t > c->g_t0 ? t - c->g_t0 : 0;
    while (d / c->g_span >= GROWTH_BUCKETS) {
        for (size_t i = 0; i < c->a->nby_stack; i++) {
            uint64_t *hw = c->gs[i].hw;
            for (unsigned j = 0; j < GROWTH_BUCKETS / 2; j++)
                hw[j] = hw[2 * j] > hw[2 * j + 1] ? hw[2 * j] : hw[2 * j + 1];
            memset(hw + GROWTH_BUCKETS / 2, 0, GROWTH_BUCKETS / 2 * sizeof *hw);
        }
        c->g_span *= 2;
    }
    return (unsigned)(d / c->g_span);
}

static int stack_bytes(struct ctx *c, const struct vsp_rec_event *e, uint64_t alloc, uint32_t *index)
{
    int created;
    uint64_t *slot = map_put(&c->by_stack, stack_key(e->api, e->stack_id, event_label(e)), &created);
    if (!slot)
        return -1;
    if (created) {
        GROW(c->gs, c->a->nby_stack, c->capgs);
        memset(&c->gs[c->a->nby_stack], 0, sizeof *c->gs);
        c->gs[c->a->nby_stack].memory = e->memory;
        GROW(c->a->by_stack, c->a->nby_stack, c->capbs);
        c->a->by_stack[c->a->nby_stack] =
            (struct vsp_stack_bytes){.stack_id = e->stack_id, .api = e->api, .label = event_label(e),
                                     .device = (uint8_t)vsp_memory_is_device(e->memory)};
        *slot = c->a->nby_stack++;
    }
    c->a->by_stack[*slot].allocated += alloc;
    c->a->by_stack[*slot].allocations++;
    *index = (uint32_t)*slot;
    return 0;
}

/* The row of a device ordinal (created on first use); NULL when out of memory or past the bound. */
static struct vsp_device_row *device_row(struct vsp_analysis *a, int32_t device)
{
    for (size_t i = 0; i < a->ndevices; i++)
        if (a->devices[i].device == device)
            return &a->devices[i];
    if (a->ndevices >= 256)
        return NULL; /* a bound: more ordinals than any machine has */
    struct vsp_device_row *g = realloc(a->devices, (a->ndevices + 1) * sizeof *g);
    if (!g)
        return NULL;
    a->devices = g;
    g[a->ndevices] = (struct vsp_device_row){.device = device};
    return &g[a->ndevices++];
}

static void device_add(struct vsp_analysis *a, int32_t device, uint64_t size, int add, uint64_t event_index)
{
    struct vsp_device_row *d = device_row(a, device < 0 ? -1 : device);
    if (!d)
        return;
    if (add) {
        d->live_bytes += size;
        if (d->live_bytes > d->peak_bytes) {
            d->peak_bytes = d->live_bytes;
            d->peak_event = event_index;
        }
    } else {
        d->live_bytes = d->live_bytes > size ? d->live_bytes - size : 0;
    }
}

/* An allocation's bytes out of the running totals; returns its memory kind's index. */
static unsigned live_sub(struct ctx *c, const struct live *l)
{
    struct vsp_analysis *a = c->a;
    a->live_bytes -= l->size;
    a->live_allocations--;
    if (vsp_memory_is_device(l->memory)) {
        c->device_live -= l->size;
        device_add(a, l->device, l->size, 0, c->event_index);
    }
    unsigned km = l->memory < VSP_MEM_COUNT_ ? l->memory : 0;
    c->kind_live[km] -= l->size;
    c->gs[l->bs].live -= l->size;
    return km;
}

/* The thread's chunk run (created on first use). */
static int chunk_run(struct ctx *c, uint32_t tid, struct chunk_state **out)
{
    int created;
    uint64_t *slot = map_put(&c->chunk_runs, tid, &created);
    if (!slot)
        return -1;
    if (created) {
        GROW(c->runs, c->nruns, c->capruns);
        c->runs[c->nruns] = (struct chunk_state){0};
        *slot = c->nruns++;
    }
    *out = &c->runs[*slot];
    return 0;
}

/* A physical chunk created (f NULL), or a creation that failed with out-of-memory into finding f. */
static int chunk_created(struct ctx *c, const struct vsp_rec_event *e, struct vsp_finding *f)
{
    struct chunk_state *r;
    if (chunk_run(c, e->tid, &r) < 0)
        return -1;
    if (!f) {
        int created;
        uint64_t *born = e->ptr ? map_put(&c->chunk_born, addr_key(CL_PHYSICAL, e->ptr), &created) : NULL;
        if (e->ptr && !born)
            return -1;
        if (born)
            *born = e->time_ns;
        if (r->finding)
            *r = (struct chunk_state){0}; /* a new run after the failure's releases */
        r->chunk_bytes = !r->chunks++ || r->chunk_bytes == e->size ? e->size : 0;
        r->bytes += e->size;
        return 0;
    }
    if (r->chunks && r->bytes > f->run.bytes) {
        f->run = (struct vsp_chunk_run){.chunks = r->chunks, .bytes = r->bytes, .chunk_bytes = r->chunk_bytes,
                                        .mapped = r->mapped};
        r->finding = (size_t)(f - c->a->findings) + 1;
        r->failed_ns = e->time_ns;
    } else {
        r->finding = 0; /* not the run the finding shows: its releases are not counted */
    }
    r->chunks = r->bytes = r->chunk_bytes = r->mapped = 0;
    return 0;
}

/* The physical chunk `key` of `size` bytes gone by an event of thread tid: after a failure, one of
 * the failed request's released chunks; before one, the end of the thread's run. */
static void chunk_released(struct ctx *c, uint64_t key, uint32_t tid, uint64_t size, uint64_t time_ns)
{
    uint64_t *born = map_get(&c->chunk_born, key), born_ns = born ? *born : time_ns;
    if (born)
        map_del(&c->chunk_born, key);
    uint64_t *slot = map_get(&c->chunk_runs, tid);
    if (!slot)
        return;
    struct chunk_state *r = &c->runs[*slot];
    if (!r->finding) {
        r->chunks = r->bytes = r->chunk_bytes = r->mapped = 0;
        return;
    }
    struct vsp_chunk_run *run = &c->a->findings[r->finding - 1].run;
    run->released_chunks++;
    run->released_bytes += size;
    run->released_ns = time_ns > r->failed_ns ? time_ns - r->failed_ns : 0;
    uint64_t before = r->failed_ns > born_ns ? r->failed_ns - born_ns : 0;
    if (before > run->released_created_ns)
        run->released_created_ns = before;
}

static int on_alloc(struct ctx *c, const struct vsp_rec_event *e)
{
    struct vsp_analysis *a = c->a;
    int cls = api_class(e->api);
    int device = vsp_memory_is_device(e->memory);
    if (e->result != 0) {
        a->failed++;
        if (e->eflags & VSP_EVENT_DENIED) {
            /* VRAMSPY_ENFORCE=vram-only refused it: the fallback the program tried, kept apart
             * from fallbacks that happened (a separate group: extra key 1) */
            struct vsp_finding *f;
            if (add_finding(c, VSP_F_HOST_FALLBACK, e, 1, &f) < 0)
                return -1;
            f->count++;
            f->bytes += e->size;
            f->denied = 1;
            uint64_t *o = map_get(&c->last_oom, e->tid);
            if (o && e->time_ns >= c->ooms[*o].time && e->time_ns - c->ooms[*o].time <= c->o->fallback_window_ns &&
                c->ooms[*o].size >= e->size)
                f->after_oom = 1;
            return 0;
        }
        if (e->result != 2) {
            /* not out-of-memory (cudaErrorMemoryAllocation == CUDA_ERROR_OUT_OF_MEMORY == 2): the call
             * could not allocate at all (no driver, no device, a bad argument), grouped by result */
            struct vsp_finding *f;
            if (add_finding(c, VSP_F_ALLOC_ERROR, e, 0x100000000ull | (uint32_t)e->result, &f) < 0)
                return -1;
            f->count++;
            f->result = e->result;
            if (e->size > f->bytes)
                f->bytes = e->size;
            return 0;
        }
        if (device) {
            int frag = e->free_bytes != VSP_UNKNOWN_BYTES && e->free_bytes >= e->size;
            if (!a->device_total_bytes && e->total_bytes != VSP_UNKNOWN_BYTES && e->total_bytes)
                a->device_total_bytes = e->total_bytes;
            struct vsp_finding *f;
            if (add_finding(c, frag ? VSP_F_FRAGMENTATION : VSP_F_OOM, e, 0, &f) < 0)
                return -1;
            f->count++;
            if (f->requested == UINT64_MAX || e->size > f->requested) {
                f->requested = e->size;
                f->free_bytes = e->free_bytes;
                f->total_bytes = e->total_bytes;
            }
            f->bytes = f->requested;
            int created;
            uint64_t *slot = map_put(&c->last_oom, e->tid, &created);
            if (!slot)
                return -1;
            if (created) {
                GROW(c->ooms, c->nooms, c->capooms);
                *slot = c->nooms++;
            }
            c->ooms[*slot].time = e->time_ns;
            c->ooms[*slot].size = e->size;
            uint64_t *site = map_get(&c->by_stack, stack_key(e->api, e->stack_id, event_label(e)));
            if (site)
                c->gs[*site].fail_t = e->time_ns; /* growth: a rise that ended here (growth_findings) */
            instant(c, e, frag ? VSP_F_FRAGMENTATION : VSP_F_OOM);
            if (e->memory == VSP_MEM_PHYSICAL && chunk_created(c, e, f) < 0)
                return -1;
        }
        return 0;
    }
    a->allocations++;
    if (e->memory == VSP_MEM_PHYSICAL && chunk_created(c, e, NULL) < 0)
        return -1;
    uint32_t bs;
    if (stack_bytes(c, e, e->size, &bs) < 0)
        return -1;
    if (vsp_memory_is_host(e->memory)) {
        a->host_allocations++;
        instant(c, e, VSP_F_HOST_FALLBACK);
        struct vsp_finding *f;
        if (add_finding(c, VSP_F_HOST_FALLBACK, e, 0, &f) < 0)
            return -1;
        f->count++;
        f->bytes += e->size;
        uint64_t *o = map_get(&c->last_oom, e->tid);
        if (o && e->time_ns >= c->ooms[*o].time && e->time_ns - c->ooms[*o].time <= c->o->fallback_window_ns &&
            c->ooms[*o].size >= e->size)
            f->after_oom = 1;
    }
    if (cls == CL_NONE || !e->ptr)
        return 0; /* a zero-byte request that succeeded with NULL holds nothing */
    uint64_t key = addr_key(cls, e->ptr);
    uint64_t *fslot = &c->freed[mix(key) & (FREED_SLOTS - 1)];
    __builtin_prefetch(fslot, 1); /* a cache miss as a rule: overlap it with the live map's */
    int created;
    uint64_t *slot = map_put(&c->live, key, &created);
    if (!slot)
        return -1;
    if (*fslot == key + 1)
        *fslot = 0; /* handed out again: no longer "freed before" */
    if (!created) {
        /* the same address handed out twice without a free we saw: keep the newer */
        live_sub(c, &c->lv[*slot]);
    } else {
        uint64_t idx;
        if (c->nfree) {
            idx = c->freelist[--c->nfree];
        } else {
            GROW(c->lv, c->nlv, c->caplv);
            idx = c->nlv++;
        }
        *slot = idx;
    }
    struct live *l = &c->lv[*slot];
    l->size = e->size;
    l->bs = bs;
    l->stack_id = e->stack_id;
    l->api = e->api;
    l->memory = e->memory;
    l->label = event_label(e);
    l->device = e->device;
    a->live_bytes += e->size;
    a->live_allocations++;
    struct site_growth *g = &c->gs[bs];
    g->live += e->size;
    if (g->live > g->high) {
        g->high = g->live;
        g->high_t = e->time_ns;
        unsigned b = growth_bucket(c, e->time_ns);
        g->hw[b] = g->high; /* the mark only rises: the bucket's last is its highest */
    }
    unsigned km = e->memory < VSP_MEM_COUNT_ ? e->memory : 0;
    c->kind_live[km] += e->size;
    if (c->kind_live[km] > a->kind_peak[km])
        a->kind_peak[km] = c->kind_live[km];
    if (device) {
        device_add(a, e->device, e->size, 1, c->event_index);
        c->device_live += e->size;
        if (c->device_live > a->peak_bytes) {
            a->peak_bytes = c->device_live;
            a->peak_time_ns = e->time_ns;
            a->peak_event = c->event_index;
            a->peak_api = e->api;
            a->peak_stack = e->stack_id;
        }
    }
    sample(c, e->time_ns, km);
    return 0;
}

/* An allocation is gone (freed; or released and unmapped): out of the live set, into the cache of
 * recently freed addresses (double frees). */
static int drop_live(struct ctx *c, uint64_t key, uint64_t *slot, const struct vsp_rec_event *e)
{
    uint64_t time_ns = e->time_ns;
    uint32_t free_stack = e->stack_id;
    struct live *l = &c->lv[*slot];
    if (l->memory == VSP_MEM_PHYSICAL)
        chunk_released(c, key, e->tid, l->size, time_ns);
    sample(c, time_ns, live_sub(c, l));
    GROW(c->freelist, c->nfree, c->capfree);
    c->freelist[c->nfree++] = *slot;
    size_t fi = mix(key) & (FREED_SLOTS - 1);
    c->freed[fi] = key + 1;
    c->freed_stacks[fi][0] = l->stack_id;
    c->freed_stacks[fi][1] = free_stack;
    map_del(&c->live, key);
    return 0;
}

static int on_free(struct ctx *c, const struct vsp_rec_event *e)
{
    struct vsp_analysis *a = c->a;
    int cls = api_class(e->api);
    if (!e->ptr || cls == CL_NONE)
        return 0; /* cudaFree(NULL) frees nothing */
    uint64_t key = addr_key(cls, e->ptr);
    uint64_t *slot = map_get(&c->live, key);
    if (e->result == 0)
        a->frees++;
    if (!slot) {
        struct vsp_finding *f;
        size_t fi = mix(key) & (FREED_SLOTS - 1);
        int dbl = c->freed[fi] == key + 1;
        if (add_finding(c, VSP_F_INVALID_FREE, e, e->ptr ^ ((uint64_t)dbl << 63), &f) < 0)
            return -1;
        f->count++;
        f->address = e->ptr;
        f->double_free = dbl;
        if (dbl && f->count == 1) {
            f->alloc_stack_id = c->freed_stacks[fi][0];
            f->first_free_stack_id = c->freed_stacks[fi][1];
        }
        return 0;
    }
    if (e->result != 0)
        return 0; /* the free failed: still live */
    if (cls == CL_PHYSICAL) {
        uint64_t *h = map_get(&c->vmm_handle, e->ptr);
        if (h && (*h & ~VMM_RELEASED)) {
            *h |= VMM_RELEASED; /* still mapped: the memory lives until the last unmap */
            return 0;
        }
    }
    return drop_live(c, key, slot, e);
}

/* The first mapping at or above va (vmm_maps is sorted by address). */
static size_t vmm_lower_bound(const struct ctx *c, uint64_t va)
{
    size_t lo = 0, hi = c->nvmm;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->vmm_maps[mid].va < va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* One mapping of a physical allocation is gone: the last unmap of a released one frees it. */
static int vmm_unmapped(struct ctx *c, uint64_t handle, const struct vsp_rec_event *e)
{
    uint64_t *h = map_get(&c->vmm_handle, handle);
    if (!h)
        return 0;
    if (*h & ~VMM_RELEASED)
        (*h)--;
    if (*h != VMM_RELEASED)
        return 0;
    map_del(&c->vmm_handle, handle);
    uint64_t key = addr_key(CL_PHYSICAL, handle);
    uint64_t *slot = map_get(&c->live, key);
    return slot ? drop_live(c, key, slot, e) : 0;
}

/* cuMemMap / cuMemUnmap: count each physical allocation's mappings; the last unmap of a released
 * one frees it (NVIDIA's vectorAddMMAP releases each handle right after mapping it). One unmap
 * covers every mapping that starts inside its range: a growable vector maps its chunks with one
 * cuMemMap each and unmaps them all with one cuMemUnmap of the whole range. */
static int on_map(struct ctx *c, const struct vsp_rec_event *e)
{
    if (e->result != 0 || !e->ptr)
        return 0;
    size_t i = vmm_lower_bound(c, e->ptr);
    if (e->op == VSP_OP_MAP) {
        int created;
        uint64_t *h = map_put(&c->vmm_handle, e->aux, &created);
        if (!h)
            return -1;
        if (created)
            *h = 0;
        (*h)++;
        uint64_t *rs = map_get(&c->chunk_runs, e->tid);
        if (rs && c->runs[*rs].chunks)
            c->runs[*rs].mapped++;
        if (i < c->nvmm && c->vmm_maps[i].va == e->ptr) {
            /* the same address mapped again without an unmap we saw: the newer mapping holds it */
            uint64_t old = c->vmm_maps[i].handle;
            c->vmm_maps[i] = (struct vmm_mapping){e->ptr, e->size, e->aux};
            return vmm_unmapped(c, old, e);
        }
        GROW(c->vmm_maps, c->nvmm, c->capvmm);
        memmove(&c->vmm_maps[i + 1], &c->vmm_maps[i], (c->nvmm - i) * sizeof *c->vmm_maps);
        c->vmm_maps[i] = (struct vmm_mapping){e->ptr, e->size, e->aux};
        c->nvmm++;
        return 0;
    }
    /* an unmap of size 0 (not recorded) covers the mapping at its address only */
    uint64_t end = e->size && e->ptr + e->size > e->ptr ? e->ptr + e->size : e->ptr + 1;
    size_t j = i;
    while (j < c->nvmm && c->vmm_maps[j].va < end)
        j++;
    if (j == i)
        return 0;
    /* take the covered mappings out first: dropping them may grow other tables, never this one */
    size_t ncov = j - i;
    uint64_t *handles = malloc(ncov * sizeof *handles);
    if (!handles)
        return -1;
    for (size_t k = 0; k < ncov; k++)
        handles[k] = c->vmm_maps[i + k].handle;
    memmove(&c->vmm_maps[i], &c->vmm_maps[j], (c->nvmm - j) * sizeof *c->vmm_maps);
    c->nvmm -= ncov;
    int rc = 0;
    for (size_t k = 0; k < ncov && rc == 0; k++)
        rc = vmm_unmapped(c, handles[k], e);
    free(handles);
    return rc;
}

/* Coverage: the baseline is the first sample's memory beyond what was traced then (the context);
 * the sample with the largest untracked gap is the one reported. */
static void on_usage(struct ctx *c, const struct vsp_rec_usage *u)
{
    struct vsp_coverage *cv = &c->a->coverage;
    if (!c->a->device_total_bytes && u->total_bytes != VSP_UNKNOWN_BYTES && u->total_bytes)
        c->a->device_total_bytes = u->total_bytes;
    if (!cv->have) {
        cv->have = 1;
        cv->baseline_bytes = u->used_bytes > u->traced_bytes ? u->used_bytes - u->traced_bytes : 0;
        cv->used_bytes = u->used_bytes;
        cv->traced_bytes = u->traced_bytes;
        cv->source = u->source;
    }
    else if (u->used_bytes < cv->baseline_bytes)
        return; /* taken after the context was gone (at exit, after the runtime's teardown): it says
                   nothing about what the process held */
    cv->samples++;
    /* what the device pools cached then: their latest samples, written just before this one */
    uint64_t pooled = 0;
    for (size_t i = 0; i < c->a->npools; i++) {
        const struct vsp_pool_row *p = &c->a->pools[i];
        if (!p->host && p->reserved_current != VSP_UNKNOWN_BYTES && p->used_current != VSP_UNKNOWN_BYTES &&
            p->reserved_current > p->used_current)
            pooled += p->reserved_current - p->used_current;
    }
    uint64_t explained = cv->baseline_bytes + u->traced_bytes + pooled;
    uint64_t gap = u->used_bytes > explained ? u->used_bytes - explained : 0;
    if (gap > cv->untracked_bytes || (gap == cv->untracked_bytes && cv->untracked_bytes == 0)) {
        cv->untracked_bytes = gap;
        cv->used_bytes = u->used_bytes;
        cv->traced_bytes = u->traced_bytes;
        cv->pool_cached_bytes = pooled;
        cv->source = u->source;
    }
}

/* Pools: the last sample of each. */
static int on_pool(struct ctx *c, const struct vsp_rec_pool *p)
{
    struct vsp_analysis *a = c->a;
    size_t i = 0;
    while (i < a->npools && a->pools[i].pool != p->pool)
        i++;
    if (i == a->npools) {
        if (a->npools >= 1024)
            return 0; /* a bound: more distinct pools than any program holds */
        GROW(a->pools, a->npools, c->cappools);
        a->npools++;
    }
    a->pools[i] = (struct vsp_pool_row){p->pool, (int)p->host, p->reserved_current, p->reserved_high,
                                        p->used_current, p->used_high};
    return 0;
}

static int on_stack(struct ctx *c, const struct vsp_rec_stack *s)
{
    struct vsp_analysis *a = c->a;
    int created;
    uint64_t *slot = map_put(&c->stacks, s->id, &created);
    if (!slot)
        return -1;
    if (!created)
        return 0; /* a duplicate (the shim's table was full): same frames, keep the first */
    GROW(a->stacks, a->nstacks, c->caps);
    struct vsp_stack *st = &a->stacks[a->nstacks];
    st->id = s->id;
    st->nframes = s->nframes;
    st->frames = malloc((s->nframes ? s->nframes : 1) * sizeof *st->frames);
    st->module = malloc((s->nframes ? s->nframes : 1) * sizeof *st->module);
    if (!st->frames || !st->module)
        return -1;
    memcpy(st->frames, s + 1, s->nframes * sizeof *st->frames);
    for (uint32_t i = 0; i < s->nframes; i++) {
        /* return addresses: the call is at address-1 (matters at a module's very end) */
        uint64_t pc = st->frames[i] - 1;
        st->module[i] = -1;
        if (VSP_PYFRAME_IS(st->frames[i]))
            continue; /* a Python frame (version 4): no module */
        for (size_t m = a->nmodules; m-- > 0;) { /* the newest module covering it so far */
            if (pc >= a->modules[m].start && pc < a->modules[m].end) {
                st->module[i] = (int)m;
                break;
            }
        }
    }
    *slot = a->nstacks++;
    return 0;
}

static int on_module(struct ctx *c, const struct vsp_rec_module *m, size_t *capm)
{
    struct vsp_analysis *a = c->a;
    GROW(a->modules, a->nmodules, *capm);
    struct vsp_module *mod = &a->modules[a->nmodules];
    memset(mod, 0, sizeof *mod);
    mod->base = m->base;
    mod->start = m->start;
    mod->end = m->end;
    mod->build_id_len = m->build_id_len > 64 ? 64 : m->build_id_len;
    memcpy(mod->build_id, m + 1, mod->build_id_len);
    const char *p = (const char *)(m + 1) + m->build_id_len;
    mod->path = strndup(p, m->path_len);
    if (!mod->path)
        return -1;
    a->nmodules++;
    return 0;
}

static int on_process(struct ctx *c, const struct vsp_rec_process *p)
{
    struct vsp_analysis *a = c->a;
    if (a->exe)
        return 0;
    a->pid = p->pid;
    a->ppid = p->ppid;
    const char *exe = (const char *)(p + 1);
    a->exe = strndup(exe, p->exe_len);
    const char *s = exe + p->exe_len, *end = s + p->argv_len;
    /* every argument takes at least its NUL: argc beyond argv_len is corrupt, not a size */
    size_t argc = p->argc < p->argv_len ? p->argc : p->argv_len;
    a->argv = calloc(argc + 1, sizeof *a->argv);
    if (!a->exe || !a->argv)
        return -1;
    while (s < end && a->argc < (int)argc) {
        size_t l = strnlen(s, (size_t)(end - s));
        a->argv[a->argc++] = strndup(s, l);
        s += l + 1;
    }
    return 0;
}

/* Is pid the process that wrote this trace, still running? Its start time (/proc/PID/stat field
 * 22, clock ticks after boot, plus the boot time) must be within 1.5 s of the trace's creation;
 * when the start time cannot be read, its executable must be the one recorded. */
static int process_is_live(uint32_t pid, uint64_t start_realtime_ns, const char *exe)
{
    if (!pid)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* gone (or no /proc: then we cannot tell, and say it ended) */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    unsigned long long starttime = 0, btime = 0;
    const char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    if (p && (p[1] != ' ' || p[2] == 'Z' || p[2] == 'X'))
        return 0; /* a zombie: it has ended, its parent has not reaped it yet */
    int field = 2;
    for (; p && *p && field < 22; p++)
        if (*p == ' ')
            field++;
    int have_start = p && field == 22 && sscanf(p, "%llu", &starttime) == 1;
    FILE *sf = fopen("/proc/stat", "r");
    char line[256];
    while (sf && fgets(line, sizeof line, sf))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (sf)
        fclose(sf);
    long hz = sysconf(_SC_CLK_TCK);
    if (have_start && btime && hz > 0 && start_realtime_ns) {
        double started = (double)btime + (double)starttime / (double)hz;
        double created = (double)start_realtime_ns / 1e9;
        double d = created - started;
        if (d < -1.5)
            return 0; /* started after the trace was made: another process with the pid */
        if (d < 1.5)
            return 1;
        /* the trace was made later than the start (a shim initialised at the first CUDA call):
         * the same executable, then */
    }
    if (!exe)
        return 0;
    char link[4096];
    snprintf(path, sizeof path, "/proc/%u/exe", pid);
    ssize_t l = readlink(path, link, sizeof link - 1);
    if (l <= 0)
        return 0;
    link[l] = 0;
    return strcmp(link, exe) == 0;
}

static int cmp_finding(const void *x, const void *y)
{
    const struct vsp_finding *a = x, *b = y;
    if (a->kind != b->kind)
        return vsp_finding_rank(a->kind) - vsp_finding_rank(b->kind);
    if (a->kind == VSP_F_CACHED && a->held_by != b->held_by) { /* one holder's findings together */
        int d = strcmp(a->held_by ? a->held_by : "", b->held_by ? b->held_by : "");
        if (d)
            return d;
    }
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return a->first_time_ns < b->first_time_ns ? -1 : a->first_time_ns > b->first_time_ns;
}

static int cmp_stack(const void *x, const void *y)
{
    const struct vsp_stack *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Second pass for --weigh peak: replay device allocations up to the event that reached the peak
 * and credit what is live then to its (API, stack). Memory: live allocations only. */
static int live_at_peak_pass(const char *path, struct vsp_analysis *a)
{
    char err[700];
    struct vsp_reader *r = vsp_reader_open(path, err, sizeof err);
    if (!r)
        return -1;
    struct map live = {0}, idx = {0};
    struct { uint64_t size; uint32_t key; int32_t device; } *vals = NULL;
    size_t nv = 0, capv = 0;
    int created, rc = 0;
    /* several devices: each device's own peak too (the plan is measured per device) */
    uint64_t last = a->peak_event;
    if (a->ndevices > 1) {
        for (size_t d = 0; d < a->ndevices; d++) {
            if (!a->devices[d].peak_bytes)
                continue;
            if (!(a->devices[d].live_at_peak = calloc(a->nby_stack ? a->nby_stack : 1, sizeof(uint64_t))))
                return vsp_reader_close(r), -1;
            if (a->devices[d].peak_event > last)
                last = a->devices[d].peak_event;
        }
    }
    for (size_t i = 0; i < a->nby_stack; i++) {
        uint64_t *s = map_put(&idx, stack_key(a->by_stack[i].api, a->by_stack[i].stack_id, a->by_stack[i].label),
                              &created);
        if (!s)
            goto oom;
        *s = i;
    }
    struct vsp_record rec;
    uint64_t n = 0;
    while (n <= last && vsp_reader_next(r, &rec) > 0) {
        if (rec.type != VSP_REC_EVENT)
            continue;
        const struct vsp_rec_event *e = rec.payload;
        uint64_t index = n++;
        int cls = api_class(e->api);
        uint64_t key = addr_key(cls, e->ptr);
        if (cls == CL_NONE || e->result != 0) {
            /* nothing changes */
        } else if (e->op == VSP_OP_ALLOC && vsp_memory_is_device(e->memory)) {
            uint64_t *bs = map_get(&idx, stack_key(e->api, e->stack_id, event_label(e)));
            uint64_t *s = map_put(&live, key, &created);
            if (!s || !bs)
                continue;
            if (created) {
                if (nv == capv) {
                    capv = capv ? capv * 2 : 1024;
                    void *np = realloc(vals, capv * sizeof *vals);
                    if (!np)
                        goto oom;
                    vals = np;
                }
                *s = nv++;
            }
            vals[*s].size = e->size;
            vals[*s].key = (uint32_t)*bs;
            vals[*s].device = e->device < 0 ? -1 : e->device;
        } else if (e->op == VSP_OP_FREE) {
            uint64_t *s = map_get(&live, key);
            if (s) {
                vals[*s].size = 0; /* slot stays; nothing live there */
                map_del(&live, key);
            }
        }
        if (index == a->peak_event)
            for (size_t i = 0; i < live.cap; i++)
                if (live.keys[i])
                    a->by_stack[vals[live.vals[i]].key].live_at_peak += vals[live.vals[i]].size;
        for (size_t d = 0; d < a->ndevices; d++) {
            struct vsp_device_row *dr = &a->devices[d];
            if (!dr->live_at_peak || index != dr->peak_event)
                continue;
            for (size_t i = 0; i < live.cap; i++)
                if (live.keys[i] && vals[live.vals[i]].device == dr->device)
                    dr->live_at_peak[vals[live.vals[i]].key] += vals[live.vals[i]].size;
        }
    }
    goto done;
oom:
    rc = -1;
done:
    map_free(&live);
    map_free(&idx);
    free(vals);
    vsp_reader_close(r);
    return rc;
}

/* Growth findings: sites whose high-water mark of live bytes rose at 4 or more of the checkpoints
 * at 50, 60, 70, 80, 90 and 100% of the run (each against the one before; 40% for the first), by
 * at least growth_min from 50% to the end; not a rise that ended in a failed allocation at the
 * same site and was given back. */
static int growth_findings(struct ctx *c)
{
    if (!c->g_span || c->g_tlast <= c->g_t0)
        return 0;
    uint64_t run = c->g_tlast - c->g_t0;
    uint64_t min = c->o->growth_min ? c->o->growth_min : 32ull << 20;
    growth_bucket(c, c->g_tlast); /* the whole run in the buckets: no doubling in the loop below */
    for (size_t i = 0; i < c->a->nby_stack; i++) {
        const struct site_growth *g = &c->gs[i];
        if (g->high < min)
            continue; /* cannot rise by min */
        uint64_t mark[7];
        unsigned b = 0;
        uint64_t upto = 0;
        for (unsigned p = 0; p < 7; p++) {
            uint64_t t = c->g_t0 + run / 10 * (4 + p) + run % 10 * (4 + p) / 10;
            unsigned last = p == 6 ? GROWTH_BUCKETS - 1 : growth_bucket(c, t);
            for (; b <= last; b++)
                if (g->hw[b] > upto)
                    upto = g->hw[b];
            mark[p] = upto;
        }
        unsigned rises = 0;
        for (unsigned p = 1; p < 7; p++)
            rises += mark[p] > mark[p - 1];
        if (rises < 4 || mark[6] - mark[1] < min)
            continue;
        /* One request served piece by piece that ran out of memory and was given back (PyTorch's
         * expandable segments map a 400 GiB request 20 MiB at a time until the device is full,
         * then release the lot; the oom finding's chunk_run tells it): the site's mark rose to
         * its failure and its live bytes are back below half time's mark plus min. Not growth. */
        if (g->fail_t && g->fail_t >= g->high_t && g->live < mark[1] + min)
            continue;
        const struct vsp_stack_bytes *sb = &c->a->by_stack[i];
        struct vsp_rec_event e = {.api = sb->api, .memory = g->memory, .stack_id = sb->stack_id};
        struct vsp_finding *f;
        if (add_finding(c, VSP_F_GROWTH, &e, sb->label, &f) < 0)
            return -1;
        f->count += sb->allocations;
        f->at_half = mark[1];
        f->high = mark[6];
        f->bytes = mark[6] - mark[1];
        double half_s = (double)(run - run / 2) / 1e9;
        f->rate = half_s > 0 ? (double)f->bytes / half_s : 0;
    }
    return 0;
}

/* One reading of the trace. *ended_meanwhile: the trace had no end when it was read and the
 * process is gone, but the header says it finalised the trace since: it ended normally while we
 * read, and the caller reads it again rather than call that a crash. */
static int analyze_once(const char *path, const struct vsp_analyze_opts *o, struct vsp_analysis *a,
                        int *ended_meanwhile)
{
    memset(a, 0, sizeof *a);
    a->rank = a->local_rank = a->world_size = -1;
    struct vsp_reader *r = vsp_reader_open(path, a->error, sizeof a->error);
    if (!r)
        return -1;
    struct ctx c = {.a = a, .o = o};
    c.freed = calloc(FREED_SLOTS, sizeof *c.freed);
    c.freed_stacks = calloc(FREED_SLOTS, sizeof *c.freed_stacks);
    a->samples = calloc(VSP_TIMELINE_MAX, sizeof *a->samples);
    a->instants = calloc(VSP_INSTANTS_MAX, sizeof *a->instants);
    if (!c.freed || !c.freed_stacks || !a->samples || !a->instants) {
        snprintf(a->error, sizeof a->error, "%s: out of memory", path);
        free(c.freed);
        free(c.freed_stacks);
        vsp_reader_close(r);
        return -1;
    }
    size_t capm = 0;
    struct vsp_record rec;
    int rc, bad = 0;
    while ((rc = vsp_reader_next(r, &rec)) > 0) {
        switch (rec.type) {
        case VSP_REC_PROCESS: bad = on_process(&c, rec.payload); break;
        case VSP_REC_MODULE: bad = on_module(&c, rec.payload, &capm); break;
        case VSP_REC_STACK: bad = on_stack(&c, rec.payload); break;
        case VSP_REC_EVENT: {
            const struct vsp_rec_event *e = rec.payload;
            a->events++;
            if (!c.g_span) {
                c.g_t0 = e->time_ns;
                c.g_span = 1024; /* ns: 32 buckets cover 32 us before the first doubling */
            }
            if (e->time_ns > c.g_tlast)
                c.g_tlast = e->time_ns;
            if (e->stack_id) {
                c.last_stack = e->stack_id;
                c.last_api = e->api;
            }
            if (e->op == VSP_OP_ALLOC)
                bad = on_alloc(&c, e);
            else if (e->op == VSP_OP_FREE)
                bad = on_free(&c, e);
            else if (e->op == VSP_OP_MAP || e->op == VSP_OP_UNMAP)
                bad = on_map(&c, e);
            c.event_index++;
            break;
        }
        case VSP_REC_USAGE:
            if (rec.payload_len >= sizeof(struct vsp_rec_usage))
                on_usage(&c, rec.payload);
            break;
        case VSP_REC_POOL:
            if (rec.payload_len >= sizeof(struct vsp_rec_pool))
                bad = on_pool(&c, rec.payload);
            break;
        case VSP_REC_PYCODE: bad = vsp_pycode_add(a, rec.payload, rec.payload_len); break;
        case VSP_REC_LABEL: {
            const struct vsp_rec_label *l = rec.payload;
            if (l->id && l->id < 65536 && l->name_len <= rec.payload_len - sizeof *l) {
                if (l->id >= a->nlabels) {
                    size_t n = l->id + 1;
                    char **nl = realloc(a->labels, n * sizeof *nl);
                    if (!nl) {
                        bad = -1;
                        break;
                    }
                    memset(nl + a->nlabels, 0, (n - a->nlabels) * sizeof *nl);
                    a->labels = nl;
                    a->nlabels = n;
                }
                if (!a->labels[l->id])
                    a->labels[l->id] = strndup((const char *)(l + 1), l->name_len);
            }
            break;
        }
        case VSP_REC_HOST: {
            const struct vsp_rec_host *h = rec.payload;
            if (!a->have_host && rec.payload_len >= sizeof *h && h->host_len <= rec.payload_len - sizeof *h) {
                a->have_host = 1;
                a->rank = h->rank;
                a->local_rank = h->local_rank;
                a->world_size = h->world_size;
                if (!(a->host = strndup((const char *)(h + 1), h->host_len)))
                    bad = -1;
            }
            break;
        }
        case VSP_REC_END: {
            c.saw_end = 1;
            const struct vsp_rec_end *e = rec.payload;
            /* a running count: a failed exec's trace has two END records, the later one has all */
            if (rec.payload_len >= sizeof *e && e->abandoned > a->abandoned)
                a->abandoned = e->abandoned;
            break;
        }
        default: break; /* NOTE and record types newer than this reader */
        }
        if (bad) {
            snprintf(a->error, sizeof a->error, "%s: out of memory while analysing", path);
            rc = -1;
            break;
        }
    }
    struct vsp_reader_stats st;
    vsp_reader_stats(r, &st);
    if (rc < 0 && !bad)
        snprintf(a->error, sizeof a->error, "%s: %s", path, vsp_reader_error(r));
    a->start_realtime_ns = vsp_reader_header(r)->start_realtime_ns;
    a->start_monotonic_ns = vsp_reader_header(r)->start_monotonic_ns;
    memcpy(a->kind_live, c.kind_live, sizeof a->kind_live);
    a->complete = st.complete;
    a->dropped = st.dropped;
    /* a call left by a jump out of its hook never returned either: lost the same way */
    a->torn = st.torn + a->abandoned;
    a->log_failed = st.log_failed;
    a->coarse_clock = st.coarse_clock;
    int ended = c.saw_end || st.finalized;
    if (o->signal && o->signal_pid && o->signal_pid == a->pid)
        a->signal = o->signal;
    /* still running: not finalised, not known to have died, and its pid is the same process */
    if (rc == 0 && !ended && !a->signal) {
        if (process_is_live(a->pid, a->start_realtime_ns, a->exe))
            a->in_progress = 1;
        /* gone: finalised since we read it? (the header is the file's, mapped shared; read after
         * the liveness check, so a process that finalised and exited in between is seen) */
        else if (__atomic_load_n(&vsp_reader_header(r)->flags, __ATOMIC_ACQUIRE) & VSP_FLAG_COMPLETE)
            *ended_meanwhile = 1;
    }
    vsp_reader_close(r);
    /* leaks: what is still live, grouped by API and stack (a running process's are just live) */
    for (size_t i = 0; rc == 0 && !a->in_progress && i < c.live.cap; i++) {
        if (!c.live.keys[i])
            continue;
        const struct live *l = &c.lv[c.live.vals[i]];
        if (api_class(l->api) == CL_NONE || l->memory == VSP_MEM_IMPORTED)
            continue; /* imported memory belongs to the process that exported it: never a leak */
        struct vsp_rec_event e = {.api = l->api, .memory = l->memory, .stack_id = l->stack_id};
        struct vsp_finding *f;
        if (add_finding(&c, VSP_F_LEAK, &e, 0, &f) < 0) {
            rc = -1;
            break;
        }
        f->count++;
        f->bytes += l->size;
        f->graph = l->api == VSP_API_cuGraphAddMemAllocNode || l->api == VSP_API_cudaGraphAddMemAllocNode;
        uint64_t *bs = map_get(&c.by_stack, stack_key(l->api, l->stack_id, l->label));
        if (bs)
            a->by_stack[*bs].live_end += l->size;
    }
    if (rc == 0 && growth_findings(&c) < 0)
        rc = -1;
    uint64_t untracked_min = o->untracked_min ? o->untracked_min : 256ull << 20;
    if (rc == 0 && a->coverage.have && a->coverage.untracked_bytes > untracked_min) {
        struct vsp_rec_event e = {.memory = VSP_MEM_DEVICE};
        struct vsp_finding *f;
        if (add_finding(&c, VSP_F_UNTRACKED, &e, 0, &f) < 0)
            rc = -1;
        else {
            f->count = 1;
            f->bytes = a->coverage.untracked_bytes;
            f->limit = untracked_min;
        }
    }
    if (rc == 0 && o->max_peak && a->peak_bytes > o->max_peak) {
        struct vsp_rec_event e = {.api = a->peak_api, .memory = VSP_MEM_DEVICE, .stack_id = a->peak_stack,
                                  .time_ns = a->peak_time_ns};
        struct vsp_finding *f;
        if (add_finding(&c, VSP_F_PEAK, &e, 0, &f) == 0) {
            f->count = 1;
            f->bytes = a->peak_bytes;
            f->limit = o->max_peak;
        }
    }
    /* crash: ended by a signal (when told), or no END record and the process is gone */
    if (rc == 0 && (a->signal || (!ended && !a->in_progress))) {
        struct vsp_rec_event e = {.api = c.last_api, .stack_id = c.last_stack, .time_ns = a->last_time_ns};
        struct vsp_finding *f;
        if (add_finding(&c, VSP_F_CRASH, &e, 0, &f) == 0) {
            f->count = 1;
            f->signal = a->signal;
        }
    }
    /* Lost events (dropped by the shim, or calls torn by the process's death) can make a free
     * look missing (a leak) or an allocation look missing (an invalid free): say so. */
    uint64_t lost = a->dropped + a->torn;
    for (size_t i = 0; rc == 0 && lost && i < a->nfindings; i++)
        if (a->findings[i].kind == VSP_F_LEAK || a->findings[i].kind == VSP_F_INVALID_FREE)
            a->findings[i].uncertain = 1;
    /* A stack written while another thread was still recording the module map can precede the
     * module record that covers it: place such frames with the first module record after all. */
    for (size_t i = 0; i < a->nstacks; i++)
        for (uint32_t k = 0; k < a->stacks[i].nframes; k++)
            for (size_t m = 0; a->stacks[i].module[k] < 0 && m < a->nmodules; m++)
                if (a->stacks[i].frames[k] - 1 >= a->modules[m].start && a->stacks[i].frames[k] - 1 < a->modules[m].end)
                    a->stacks[i].module[k] = (int)m;
    map_free(&c.live);
    free(c.freed);
    free(c.freed_stacks);
    map_free(&c.findings);
    map_free(&c.stacks);
    map_free(&c.last_oom);
    map_free(&c.chunk_runs);
    map_free(&c.chunk_born);
    free(c.runs);
    map_free(&c.by_stack);
    free(c.vmm_maps);
    map_free(&c.vmm_handle);
    free(c.lv);
    free(c.freelist);
    free(c.ooms);
    free(c.gs);
    if (rc < 0)
        return -1;
    if ((o->live_at_peak || a->nlabels) && a->peak_bytes && live_at_peak_pass(path, a) < 0) {
        snprintf(a->error, sizeof a->error, "%s: out of memory while analysing", path);
        return -1;
    }
    vsp_sort_findings(a);
    if (a->nstacks)
        qsort(a->stacks, a->nstacks, sizeof *a->stacks, cmp_stack);
    return 0;
}

void vsp_sort_findings(struct vsp_analysis *a)
{
    if (a->nfindings)
        qsort(a->findings, a->nfindings, sizeof *a->findings, cmp_finding);
}

uint64_t vsp_analysis_first_ns(const struct vsp_analysis *a)
{
    return a->nsamples ? a->samples[0].t0 : a->first_time_ns;
}

uint64_t vsp_analysis_end_ns(const struct vsp_analysis *a)
{
    uint64_t t = a->last_time_ns;
    if (a->nsamples && a->samples[a->nsamples - 1].t1 > t)
        t = a->samples[a->nsamples - 1].t1;
    return t;
}

uint64_t vsp_analysis_start_key(const struct vsp_analysis *a)
{
    if (a->start_realtime_ns && a->start_monotonic_ns)
        return a->start_realtime_ns;
    return vsp_analysis_first_ns(a);
}

const struct vsp_stack *vsp_analysis_stack(const struct vsp_analysis *a, uint32_t id)
{
    size_t lo = 0, hi = a->nstacks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->stacks[mid].id == id)
            return &a->stacks[mid];
        if (a->stacks[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int vsp_analyze_file(const char *path, const struct vsp_analyze_opts *o, struct vsp_analysis *a)
{
    /* a trace is read more than once (a second pass; again when its process ended meanwhile) and
     * opening a FIFO waits for its writer: only a file will do */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        memset(a, 0, sizeof *a);
        snprintf(a->error, sizeof a->error, "%s: not a regular file (%s): a trace is read more than once; save it "
                 "to a file first", path, S_ISFIFO(sb.st_mode) ? "a pipe or FIFO" : S_ISDIR(sb.st_mode) ? "a directory"
                 : "a device or socket");
        return -1;
    }
    int ended_meanwhile = 0;
    int rc = analyze_once(path, o, a, &ended_meanwhile);
    if (rc == 0 && ended_meanwhile) {
        vsp_analysis_free(a);
        ended_meanwhile = 0;
        rc = analyze_once(path, o, a, &ended_meanwhile); /* now complete: read it whole */
    }
    return rc;
}

void vsp_analysis_free(struct vsp_analysis *a)
{
    free(a->exe);
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    free(a->argv);
    for (size_t i = 0; i < a->nmodules; i++)
        free(a->modules[i].path);
    free(a->modules);
    for (size_t i = 0; i < a->nstacks; i++) {
        free(a->stacks[i].frames);
        free(a->stacks[i].module);
    }
    free(a->stacks);
    free(a->findings);
    free(a->samples);
    free(a->instants);
    free(a->by_stack);
    for (size_t i = 0; i < a->nlabels; i++)
        free(a->labels[i]);
    free(a->labels);
    vsp_pycodes_free(a);
    free(a->purposes);
    free(a->pools);
    free(a->host);
    for (size_t i = 0; i < a->ndevices; i++) {
        free(a->devices[i].live_at_peak);
        free(a->devices[i].purposes);
    }
    free(a->devices);
    free(a->plan);
    free(a->sites);
    memset(a, 0, sizeof *a);
}
