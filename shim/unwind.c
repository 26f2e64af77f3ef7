/* Stack capture and interning. Frames come from libunwind's unw_backtrace (its fast path caches
 * frame layouts per thread, so a warm stack costs tens of nanoseconds a frame, no malloc, no lock:
 * we set UNW_CACHE_PER_THREAD). Frames of libunwind and of the shim are cut off, so a stack starts
 * at the program's own call site. A stack seen for the first time is written as a STACK record
 * (after the module map is brought up to date, so the reader can place every frame).
 * Must never: symbolise, lock or allocate. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <string.h>
#include <sys/mman.h>

#include "atomic.h"
#include "core.h"
#include "stackstore.h"

#define SKIP_WINDOW 24 /* frames of libunwind + shim at the top never exceed this */

static struct vsp_stackstore stacks;
static int unwind_policy_set;
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
    if (!__atomic_exchange_n(&unwind_policy_set, 1, __ATOMIC_RELAXED)) {
        vsp_tls.in_walk++; /* libunwind initialises here, and opens its validation pipe */
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
        vsp_tls.in_walk--;
    }
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
    vsp_stackstore_destroy(&stacks);
    memset(&stacks, 0, sizeof stacks);
    if (sites)
        memset(sites, 0, SITES * sizeof *sites); /* the child's ids start again */
}

unsigned vsp_capture_stack(uint64_t *frames, unsigned max)
{
    void *buf[VSP_MAX_DEPTH + SKIP_WINDOW];
    int n = unw_backtrace(buf, (int)(max + SKIP_WINDOW));
    if (n <= 0)
        return 0;
    /* The innermost frames are libunwind's and ours; the program's call site follows the last
     * shim frame among them. */
    int start = 0;
    int window = n < SKIP_WINDOW ? n : SKIP_WINDOW;
    for (int i = 0; i < window; i++)
        if (vsp_in_shim(buf[i]))
            start = i + 1;
    unsigned out = 0;
    for (int i = start; i < n && out < max; i++)
        frames[out++] = (uint64_t)(uintptr_t)buf[i];
    return out;
}

uint32_t vsp_stack_id(const uint64_t *frames, unsigned n)
{
    int is_new = 0;
    struct vsp_stack_slot *claim;
    uint32_t id = vsp_stackstore_intern(&stacks, vsp_stack_hash(frames, n), &is_new, &claim);
    if (!is_new)
        return id;
    if (sites)
        vsp_store_relaxed(&sites[id & (SITES - 1)], frames[0]);
    vsp_stack_label_compute(id, frames, n);
    vsp_trace_modules_changed();
    struct vsp_resv res;
    uint32_t len = (uint32_t)(sizeof(struct vsp_rec_stack) + n * sizeof(uint64_t));
    int rc = vsp_ring_reserve(vsp_trace_ring(), VSP_REC_STACK, len, &res);
    if (rc == 0) {
        struct vsp_rec_stack *s = res.payload;
        s->id = id;
        s->nframes = n;
        memcpy(s + 1, frames, n * sizeof(uint64_t));
        vsp_ring_commit(vsp_trace_ring(), &res);
    }
    if (claim)
        vsp_stackstore_publish(claim, id); /* after the record: see stackstore.h */
    return rc == 0 ? id : 0;
}
