/* Lock-free live-allocation table (see livetable.h). A slot is claimed by CAS from empty or
 * tombstone to BUSY, filled, then published with a release store of its key; a free CASes the key
 * to a tombstone. An address is live at most once per class (the shim removes it before the real
 * free and adds it after the real allocation), so a key never has two slots.
 * Must never: lock, malloc, or make a system call after init. */
#include "shim/base/livetable.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "shim/base/atomic.h"
#include "shim/base/tcount.h"

#define KEY_EMPTY 0ull
#define KEY_TOMB 1ull
#define KEY_BUSY 2ull
#define MAX_PROBES 128

static inline uint64_t make_key(unsigned cls, uint64_t addr)
{
    return (addr & ((1ull << 56) - 1)) | ((uint64_t)cls << 56);
}

static inline uint64_t slot_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

int vsp_livetable_init(struct vsp_livetable *t, size_t capacity)
{
    size_t cap = 1024;
    while (cap < capacity)
        cap <<= 1;
    void *p = mmap(NULL, cap * sizeof(struct vsp_live_slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    t->slots = p;
    t->mask = cap - 1;
    return 0;
}

void vsp_livetable_destroy(struct vsp_livetable *t)
{
    if (t->slots)
        munmap(t->slots, (t->mask + 1) * sizeof(struct vsp_live_slot));
    t->slots = NULL;
}

/* The device's bytes: its kinds' totals summed (relaxed loads: statistics). */
static unsigned long long device_total(const struct vsp_counters *c)
{
    return vsp_load_relaxed(&c->live_bytes[VSP_MEM_DEVICE]) + vsp_load_relaxed(&c->live_bytes[VSP_MEM_ARRAY]) +
           vsp_load_relaxed(&c->live_bytes[VSP_MEM_PHYSICAL]);
}

/* One locked add a call (the kind's total); the device's total is the sum of its kinds' (issue 22:
 * a second total kept for it cost another locked add per allocation and per free). */
static void count_add(struct vsp_counters *c, unsigned memory, uint64_t size)
{
    VSP_TC_ADD(live_count, 1);
    if (memory < VSP_MEM_COUNT_) {
        /* relaxed: statistics; the peaks may be briefly stale by a concurrent call's size */
        unsigned long long k = vsp_fetch_add_relaxed(&c->live_bytes[memory], size) + size;
        vsp_atomic_max_relaxed(&c->peak_bytes[memory], k);
        if (vsp_memory_is_device(memory)) {
            unsigned long long now = device_total(c);
            vsp_atomic_max_relaxed(&c->peak_device_bytes, now > k ? now : k);
        }
    }
}

static void count_sub(struct vsp_counters *c, unsigned memory, uint64_t size)
{
    VSP_TC_ADD(live_count, -1);
    if (memory < VSP_MEM_COUNT_)
        vsp_fetch_sub_relaxed(&c->live_bytes[memory], size);
}

unsigned long long vsp_live_device_bytes(const struct vsp_livetable *t)
{
    return device_total(&t->c);
}

static int insert(struct vsp_livetable *t, uint64_t key, const struct vsp_live_slot *e)
{
    if (!t->slots)
        return 0;
    uint64_t h = slot_hash(key);
    for (unsigned probe = 0; probe < MAX_PROBES; probe++) {
        struct vsp_live_slot *s = &t->slots[(h + probe) & t->mask];
        uint64_t k = vsp_load_relaxed(&s->key);
        while (k == KEY_EMPTY || k == KEY_TOMB) {
            /* acq_rel claim: acquire pairs with the release that made this slot a tombstone, so
             * the remover's reads of the old fields happen before our writes below; the entry
             * itself is published by the release store of the key. */
            if (vsp_cas_acq_rel(&s->key, &k, KEY_BUSY)) {
                s->size = e->size;
                s->stack_id = e->stack_id;
                s->memory = e->memory;
                s->device = e->device;
                s->label = e->label;
                /* release: size/stack/memory are visible before the key that names them
                 * (pairs with the acquire in vsp_live_remove and in diagnostic scans). */
                vsp_store_release(&s->key, key);
                return 1;
            }
        }
    }
    return 0;
}

void vsp_live_add(struct vsp_livetable *t, unsigned cls, uint64_t addr, uint64_t size,
                  unsigned memory, uint32_t stack_id, uint16_t label, int device)
{
    struct vsp_live_slot e = {.size = size, .stack_id = stack_id, .memory = (uint8_t)memory, .label = label,
                              .device = (int8_t)(device >= 0 && device <= 126 ? device : -1)};
    struct vsp_tstripe *ts = vsp_tc_self();
    vsp_tc_add(ts, &ts->c.allocations, 1);
    if (vsp_memory_is_host(memory))
        vsp_tc_add(ts, &ts->c.host_allocations, 1);
    if (!insert(t, make_key(cls, addr), &e)) {
        vsp_tc_add(ts, &ts->c.untracked, 1);
        return;
    }
    count_add(&t->c, memory, size);
}

int vsp_live_remove(struct vsp_livetable *t, unsigned cls, uint64_t addr, struct vsp_live_slot *out)
{
    if (!t->slots)
        return 0;
    uint64_t key = make_key(cls, addr);
    uint64_t h = slot_hash(key);
    for (unsigned probe = 0; probe < MAX_PROBES; probe++) {
        struct vsp_live_slot *s = &t->slots[(h + probe) & t->mask];
        /* acquire: pairs with the release in insert(): a matching key means its fields are set. */
        uint64_t k = vsp_load_acquire(&s->key);
        if (k == KEY_EMPTY)
            return 0;
        if (k != key)
            continue;
        out->key = k;
        out->size = s->size;
        out->stack_id = s->stack_id;
        out->memory = s->memory;
        out->device = s->device;
        out->label = s->label;
        /* acq_rel: release orders our reads of the fields before a later claim of the tombstone
         * (which acquires it); acquire keeps the read of a concurrent winner consistent. */
        if (vsp_cas_acq_rel(&s->key, &k, KEY_TOMB)) {
            count_sub(&t->c, out->memory, out->size);
            return 1;
        }
        return 0; /* a concurrent free of the same address won (a double free in the program) */
    }
    return 0;
}

void vsp_live_restore(struct vsp_livetable *t, unsigned cls, uint64_t addr, const struct vsp_live_slot *e)
{
    if (insert(t, make_key(cls, addr), e))
        count_add(&t->c, e->memory, e->size);
}

void vsp_live_counters(const struct vsp_livetable *t, struct vsp_counters *out)
{
    struct vsp_tcounts tc;
    vsp_tc_sum(&tc);
    const struct vsp_counters *c = &t->c;
    memset(out, 0, sizeof *out);
    for (int m = 0; m < VSP_MEM_COUNT_; m++) {
        out->live_bytes[m] = vsp_load_relaxed(&c->live_bytes[m]);
        out->peak_bytes[m] = vsp_load_relaxed(&c->peak_bytes[m]);
    }
    out->device_bytes = device_total(c);
    out->peak_device_bytes = vsp_load_relaxed(&c->peak_device_bytes);
    out->abandoned = vsp_load_relaxed(&c->abandoned);
    out->allocations = tc.allocations;
    out->frees = tc.frees;
    out->failed = tc.failed;
    out->host_allocations = tc.host_allocations;
    out->live_count = tc.live_count;
    out->untracked = tc.untracked;
    out->nested = tc.nested;
    memcpy(out->by_api, tc.by_api, sizeof out->by_api);
}
