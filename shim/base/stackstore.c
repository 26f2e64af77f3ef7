/* Lock-free stack-id table (see stackstore.h). An id is taken from a counter before the CAS that
 * claims a slot, so a slot's id is published by a single release store right after the claim;
 * a thread that finds the key but no id yet spins briefly (the claimer is a few instructions
 * away), and after a bound gives up and writes its own copy of the stack under a fresh id.
 * Must never: lock, malloc, or make a system call after init. */
#include "shim/base/stackstore.h"

#include <errno.h>
#include <sys/mman.h>

#include "shim/base/atomic.h"

#define MAX_PROBES 64
#define MAX_ID_SPINS 16384 /* the claimer writes one record in between: ~100 ns, unless preempted */

int vsp_stackstore_init(struct vsp_stackstore *s, size_t capacity)
{
    size_t cap = 1024;
    while (cap < capacity)
        cap <<= 1;
    void *p = mmap(NULL, cap * sizeof(struct vsp_stack_slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    s->slots = p;
    s->mask = cap - 1;
    s->next_id = 1;
    s->overflow = 0;
    return 0;
}

void vsp_stackstore_destroy(struct vsp_stackstore *s)
{
    if (s->slots)
        munmap(s->slots, (s->mask + 1) * sizeof(struct vsp_stack_slot));
    s->slots = NULL;
}

static inline uint64_t lane(uint64_t h, uint64_t frame)
{
    h ^= frame;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

static inline uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

uint64_t vsp_stack_hash(const uint64_t *frames, unsigned n)
{
    /* Four independent multiply-xorshift lanes (frames i, i+1, i+2, i+3 go to lanes 0..3), so the
     * multiplies of neighbouring frames overlap instead of waiting for each other: the chain that
     * bounds the speed is a quarter as long. A frame's lane depends on its position, and the lanes
     * are rotated differently before they are combined, so order matters. Collisions between
     * distinct stacks are ~n^2/2^64 and would merge two stacks' attribution, nothing worse. */
    uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0xc2b2ae3d27d4eb4full, c = 0x165667b19e3779f9ull,
             d = 0x27d4eb2f165667c5ull;
    unsigned i = 0;
    for (; i + 4 <= n; i += 4) {
        a = lane(a, frames[i]);
        b = lane(b, frames[i + 1]);
        c = lane(c, frames[i + 2]);
        d = lane(d, frames[i + 3]);
    }
    for (; i < n; i++)
        a = lane(a, frames[i]);
    uint64_t h = a ^ rotl(b, 17) ^ rotl(c, 31) ^ rotl(d, 47);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    return h ? h : 1;
}

void vsp_stackstore_publish(struct vsp_stack_slot *claim, uint32_t id)
{
    /* release: the stack record was committed before; pairs with the acquire load of id in
     * vsp_stackstore_intern, so a thread that sees the id writes its event after the record. */
    vsp_store_release(&claim->id, id);
}

uint32_t vsp_stackstore_intern(struct vsp_stackstore *s, uint64_t hash, int *is_new,
                               struct vsp_stack_slot **claim)
{
    *claim = NULL;
    if (!s->slots)
        goto fresh;
    for (unsigned probe = 0; probe < MAX_PROBES; probe++) {
        struct vsp_stack_slot *slot = &s->slots[(hash + probe) & s->mask];
        /* acquire: pairs with the claimer's CAS so that if we see the key we then see its id
         * (or 0, and wait for the release below). */
        uint64_t key = vsp_load_acquire(&slot->key);
        if (key == 0) {
            uint32_t id = vsp_fetch_add_relaxed(&s->next_id, 1);
            uint64_t expected = 0;
            if (vsp_cas_acq_rel(&slot->key, &expected, hash)) {
                *claim = slot; /* the caller publishes the id once its record is written */
                *is_new = 1;
                return id;
            }
            key = expected; /* someone claimed it first: look at what they put there */
        }
        if (key == hash) {
            for (int spin = 0; spin < MAX_ID_SPINS; spin++) {
                uint32_t id = vsp_load_acquire(&slot->id);
                if (id) {
                    *is_new = 0;
                    return id;
                }
                vsp_cpu_relax();
            }
            goto fresh;
        }
    }
    vsp_fetch_add_relaxed(&s->overflow, 1);
fresh:
    *is_new = 1;
    return vsp_fetch_add_relaxed(&s->next_id, 1);
}
