/* Stack capture and interning. Frames come from the shim's own walker (walker.c: the modules'
 * unwind tables, rules cached per return address, frame pointers where there are none; no lock and
 * no malloc on the walk path). The shim's own frames at the top are cut, so a stack starts at the
 * program's call site; how many there are is learnt from the walks themselves, so a walk asks for
 * only that many frames beyond the depth kept. A stack seen for the first time is written as a
 * STACK record (after the module map is brought up to date, so the reader can place every frame).
 * Must never: symbolise, lock or allocate. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/walk/unwind.h"
#include "shim/walk/pyframes.h"
#include "shim/base/stackstore.h"
#include "shim/base/tcount.h"
#include "shim/walk/walker.h"

#define SHIM_FRAMES_MAX 16 /* frames of the shim above the program's call site: never more */

static struct vsp_stackstore stacks;
/* Moves when the stack store is emptied (a fork child): ids kept in capture buffers are void. */
static unsigned long stacks_gen;
/* The most shim frames seen at the top of a walk, plus one (relaxed: a hint; a walk that finds
 * more takes the slow path once and raises it). Starts at the bound. */
static unsigned shim_frames = SHIM_FRAMES_MAX;
static int shim_frames_learnt;
/* The call site (innermost kept frame) of each stack id, for the in-process out-of-memory
 * breakdown; indexed by id modulo SITES (a diagnostic: a wrapped id shows a newer site). */
#define SITES (1u << 18)
static uint64_t *sites;

uint64_t vsp_stack_site(uint32_t id)
{
    return sites && id ? vsp_load_relaxed(&sites[id & (SITES - 1)]) : 0;
}



int vsp_stacks_init(void)
{
    vsp_walker_init();
    if (stacks.slots)
        return 0;
    if (!sites) {
        void *p = mmap(NULL, SITES * sizeof *sites, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        sites = p == MAP_FAILED ? NULL : p;
    }
    return vsp_stackstore_init(&stacks, 1u << 18);
}

void vsp_stacks_reset(void)
{
    vsp_store_relaxed(&stacks_gen, stacks_gen + 1); /* (one thread: the fork child) */
    vsp_walker_atfork_child();
    vsp_py_atfork_child();
    vsp_stackstore_destroy(&stacks);
    memset(&stacks, 0, sizeof stacks);
    if (sites)
        memset(sites, 0, SITES * sizeof *sites); /* the child's ids start again */
}

/* How many frames a walk from here has above the hook's call site (the shim's own), as the last
 * walk that found the site learnt it (relaxed: a hint; every use checks it against the site). */
static unsigned site_skip;

/* Frame buffers, off the hook's stack: claimed per capture (a signal handler's hook takes another),
 * one cache line of flag each, a thread trying the one it used last first. Chunks are mapped on
 * first need and never unmapped; more captures at once than slots (4,096) record no stack, and
 * are counted. */
#define SCRATCH_FRAMES (VSP_MAX_DEPTH + SHIM_FRAMES_MAX)
#define SCRATCH_CHUNK 64
#define SCRATCH_CHUNKS 64
struct scratch {
    int busy;
    char pad[60];
    uint64_t frames[SCRATCH_FRAMES];
    struct vsp_walk_memo memo; /* the last walk through this buffer (walker.h): a thread usually
                                  gets its own buffer back, and replays its last walk's levels */
    uint32_t id;               /* the id of that capture (0: none; with Python, of its Python frames too), */
    unsigned id_n;             /* how many there were (0: nothing kept), */
    unsigned long id_gen;      /* the store's generation then, */
    uint64_t hash;             /* and their hash */
    struct vsp_py_memo py;     /* its last capture's Python frames and stack id (pyframes.h) */
};

static struct scratch *scratch_chunks[SCRATCH_CHUNKS];
static __thread int scratch_hint __attribute__((tls_model("initial-exec")));
unsigned long vsp_stacks_unwalked; /* captures without a buffer (relaxed counter) */

static struct scratch *scratch_claim(void)
{
    int hint = scratch_hint;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < SCRATCH_CHUNKS * SCRATCH_CHUNK; k++) {
            int i = pass ? k : hint;
            /* acquire: pairs with the chunk's publication below */
            struct scratch *c = vsp_load_acquire(&scratch_chunks[i / SCRATCH_CHUNK]);
            if (!c) {
                if (pass == 0)
                    break; /* the hint's chunk is not there yet: scan */
                void *m = mmap(NULL, sizeof(struct scratch) * SCRATCH_CHUNK, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (m == MAP_FAILED)
                    return NULL;
                struct scratch *none = NULL;
                /* release: the zeroed chunk before its pointer */
                if (!__atomic_compare_exchange_n(&scratch_chunks[i / SCRATCH_CHUNK], &none, m, 0,
                                                 __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) {
                    munmap(m, sizeof(struct scratch) * SCRATCH_CHUNK);
                }
                c = vsp_load_acquire(&scratch_chunks[i / SCRATCH_CHUNK]);
            }
            struct scratch *s = &c[i % SCRATCH_CHUNK];
            /* acquire: the previous owner's use of the frames is over before ours begins */
            if (!vsp_load_relaxed(&s->busy) && vsp_spin_trylock(&s->busy)) {
                scratch_hint = i;
                return s;
            }
            if (pass == 0)
                break;
        }
    }
    return NULL;
}

static void scratch_release(struct scratch *s)
{
    vsp_spin_unlock(&s->busy); /* release: our frames are read before the next owner writes */
}

/* A thread keeps the first buffer it claims, busy, for its life (issue 22: a claim and a release a
 * capture were two locked instructions), and gives it back when it exits (tcount.h's exit hook). A
 * capture that finds it in use (a signal handler's, interrupting one of the thread's own) claims
 * another for itself, as does every capture when no buffer could be kept. */
static __thread struct scratch *kept __attribute__((tls_model("initial-exec")));
static __thread int kept_in_use __attribute__((tls_model("initial-exec")));

static void scratch_thread_exit(void)
{
    struct scratch *s = kept;
    kept = NULL;
    if (s)
        scratch_release(s);
}

static struct scratch *scratch_take(int *kept_one)
{
    struct scratch *s = kept;
    *kept_one = 0;
    if (VSP_LIKELY(s && !kept_in_use)) {
        kept_in_use = 1;
        __asm__ volatile("" ::: "memory"); /* flagged before use: a handler on this thread sees it */
        *kept_one = 1;
        return s;
    }
    s = scratch_claim();
    if (s && !kept && !kept_in_use) {
        vsp_tc_at_exit(scratch_thread_exit);
        kept = s;
        kept_in_use = 1;
        __asm__ volatile("" ::: "memory");
        *kept_one = 1;
    }
    return s;
}

static void scratch_put(struct scratch *s, int kept_one)
{
    __asm__ volatile("" ::: "memory"); /* the capture's use of the buffer is over first */
    if (kept_one)
        kept_in_use = 0;
    else
        scratch_release(s);
}

static unsigned capture_stack(uint64_t *frames, unsigned max, const void *site, struct vsp_walk_memo *memo);

uint32_t vsp_capture_stack_id(unsigned max, const void *site)
{
    int kept_one;
    struct scratch *s = scratch_take(&kept_one);
    if (!s) {
        vsp_fetch_add_relaxed(&vsp_stacks_unwalked, 1);
        return 0;
    }
    unsigned n = capture_stack(s->frames, max, site, &s->memo);
    uint32_t id = 0;
    unsigned long gen = vsp_load_relaxed(&stacks_gen);
    /* The same frames as this buffer's last capture (the memo says so): without Python the same id,
     * without hashing and looking the frames up again; with Python (whose frames may change from
     * call to call) the native frames' hash, and the same id when the Python frames repeat too. */
    int same = s->memo.same && n && n == s->id_n && s->id_gen == gen;
    if (same && s->id && vsp_py_absent()) {
        id = s->id;
    } else if (n) {
        uint64_t h = same ? s->hash : vsp_stack_hash(s->frames, n);
        /* with the Python frames, if any */
        id = vsp_py_stack_id_hashed(s->frames, n, h, &s->py, gen, same ? s->id : 0);
        s->id = id;
        s->id_n = n;
        s->id_gen = gen;
        s->hash = h;
    }
    scratch_put(s, kept_one);
    return id;
}

unsigned vsp_capture_stack(uint64_t *frames, unsigned max, const void *site)
{
    return capture_stack(frames, max, site, NULL);
}

/* A walk from the caller, through the memo when there is one (noinline: both the shim frames
 * counted above the call site and the frame the walk starts from stay the same). */
static __attribute__((noinline)) unsigned walk_here(uint64_t *frames, unsigned max, unsigned skip,
                                                    struct vsp_walk_memo *memo)
{
    unsigned n = memo ? vsp_walk_stack_memo(frames, max, skip, memo) : vsp_walk_stack(frames, max, skip);
    __asm__ volatile("" ::: "memory"); /* not a tail call: this frame is one of the shim's */
    return n;
}

static unsigned capture_stack(uint64_t *frames, unsigned max, const void *site, struct vsp_walk_memo *memo)
{
    /* The fast path: skip the learnt number of shim frames and walk straight into frames; right
     * when the first frame kept is the hook's call site. */
    unsigned skip = vsp_load_relaxed(&site_skip);
    if (site && skip) {
        unsigned n = walk_here(frames, max, skip, memo);
        if (n && frames[0] == (uint64_t)(uintptr_t)site) {
            if (memo)
                memo->intact = frames; /* only read from here on (vsp_capture_stack_id) */
            return n;
        }
    }
    /* The slow path walks into frames itself (SCRATCH_FRAMES long), then moves the kept part to
     * the front: no second buffer on the hook's stack. */
    uint64_t *buf = frames;
    for (;;) {
        unsigned extra = vsp_load_relaxed(&shim_frames);
        unsigned n = walk_here(buf, max + extra, 0, memo);
        /* The innermost frames are the shim's; the program's call site follows the last of them. */
        unsigned start = 0;
        for (unsigned i = 0; i < n && i < SHIM_FRAMES_MAX; i++)
            if (vsp_in_shim((const void *)(uintptr_t)buf[i]))
                start = i + 1;
        unsigned need = start + 2 < SHIM_FRAMES_MAX ? start + 2 : SHIM_FRAMES_MAX; /* one spare */
        if (!vsp_load_relaxed(&shim_frames_learnt) || need > extra) {
            /* the first walk, or a path with more shim frames than any before: from now on ask
             * for this many beyond the depth kept (the hint only grows) */
            unsigned cur = vsp_load_relaxed(&shim_frames);
            if (!vsp_load_relaxed(&shim_frames_learnt) || need > cur)
                vsp_store_relaxed(&shim_frames, need);
            vsp_store_relaxed(&shim_frames_learnt, 1);
            if (need > extra)
                continue; /* this walk may have stopped short: again, with room */
        }
        if (site && start < n && buf[start] == (uint64_t)(uintptr_t)site)
            vsp_store_relaxed(&site_skip, start); /* relaxed: a hint, checked on every use */
        unsigned out = 0;
        for (unsigned i = start; i < n && out < max; i++)
            frames[out++] = buf[i]; /* (out <= i: a forward move within one array) */
        if (!out && site && max)
            frames[out++] = (uint64_t)(uintptr_t)site; /* a walk that got no further: the call site */
        return out;
    }
}

struct new_stack {
    uint32_t id;
    const uint64_t *frames;
    unsigned n;
    const uint64_t *py; /* the Python part (pyframes.h), m words */
    unsigned m;
};

static void new_stack_cold(void *p)
{
    struct new_stack *a = p;
    vsp_stack_label_compute(a->id, a->frames, a->n, a->py, a->m);
    vsp_trace_modules_changed();
}

uint32_t vsp_stack_id(const uint64_t *frames, unsigned n)
{
    return vsp_stack_id_parts_hashed(frames, n, vsp_stack_hash(frames, n), NULL, 0);
}

/* The one-frame stack of a free's call site, remembered per thread for its last site (a loop frees
 * from one place): no hash and no lookup when the site is the last one (issue 22). Void after a fork
 * child empties the store (the generation), and never an id of 0 (a stack not written). */
static __thread struct {
    uint64_t site;
    unsigned long gen;
    uint32_t id;
} last_site __attribute__((tls_model("initial-exec")));

uint32_t vsp_site_stack_id(uint64_t site)
{
    unsigned long gen = vsp_load_relaxed(&stacks_gen);
    if (VSP_LIKELY(last_site.id && last_site.site == site && last_site.gen == gen))
        return last_site.id;
    uint32_t id = vsp_stack_id(&site, 1);
    last_site.site = site;
    last_site.gen = gen;
    last_site.id = id;
    return id;
}


uint32_t vsp_stack_id_parts_hashed(const uint64_t *frames, unsigned n, uint64_t hash, const uint64_t *py, unsigned m)
{
    int is_new = 0;
    struct vsp_stack_slot *claim;
    if (m) /* the Python part (pyframes.h) makes it another stack */
        hash = vsp_stack_hash((const uint64_t[2]){hash, vsp_stack_hash(py, m)}, 2);
    uint32_t id = vsp_stackstore_intern(&stacks, hash, &is_new, &claim);
    if (!is_new)
        return id;
    if (sites)
        vsp_store_relaxed(&sites[id & (SITES - 1)], frames[0]);
    struct new_stack a = {id, frames, n, py, m};
    /* symbols for the purpose rules (libdw's locks), module records (the loader's): inside the
     * fork bracket */
    vsp_walk_enter();
    vsp_cold_call(new_stack_cold, &a);
    vsp_walk_leave();
    struct vsp_resv res;
    uint32_t len = (uint32_t)(sizeof(struct vsp_rec_stack) + (n + m) * sizeof(uint64_t));
    int rc = vsp_ring_reserve(vsp_trace_ring(), VSP_REC_STACK, len, &res);
    if (rc == 0) {
        struct vsp_rec_stack *s = res.payload;
        s->id = id;
        s->nframes = n + m;
        memcpy(s + 1, frames, n * sizeof(uint64_t));
        if (m)
            memcpy((uint64_t *)(s + 1) + n, py, m * sizeof(uint64_t));
        vsp_ring_commit(vsp_trace_ring(), &res);
    }
    if (claim)
        vsp_stackstore_publish(claim, id); /* after the record: see stackstore.h */
    return rc == 0 ? id : 0;
}
