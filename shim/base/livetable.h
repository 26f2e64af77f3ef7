/* Live-allocation table and counters: what the shim knows, in process, about memory still held,
 * for the exit summary (and the out-of-memory breakdown). Lock-free open addressing keyed by
 * address and address class; a free finds the size its allocation had. Fixed capacity: when full,
 * further allocations are counted but not tracked and the summary says "approximate". */
#ifndef VSP_LIVETABLE_H
#define VSP_LIVETABLE_H

#include <stddef.h>
#include <stdint.h>
#include "vramspy/trace_format.h"

/* Address classes: a free names which class it releases (cudaFree: device-addressed, ...). */
enum vsp_addr_class {
    VSP_CLASS_DEVPTR = 1,   /* device, managed, pitched, stream-ordered */
    VSP_CLASS_HOST = 2,     /* pinned / mapped host allocations */
    VSP_CLASS_REGISTERED = 3,
    VSP_CLASS_ARRAY = 4,
    VSP_CLASS_MIPMAP = 5,
    VSP_CLASS_PHYSICAL = 6, /* cuMemCreate handles */
    VSP_CLASS_IMPORTED = 7, /* IPC mappings: their addresses may equal a local allocation's */
    VSP_CLASS_EXTERNAL = 8, /* cuImportExternalMemory objects */
};

struct vsp_live_slot {
    uint64_t key;     /* (addr & 2^56-1) | class << 56; 0 empty, 1 tombstone */
    uint64_t size;
    uint32_t stack_id;
    uint8_t memory;   /* enum vsp_memory */
    int8_t device;    /* the allocation's device; -1 unknown (or past 126): its free asks the driver */
    uint16_t label;   /* purpose label id, 0 none */
};

/* What the table counts. In t->c only the byte totals, the peaks and `abandoned` are kept (atomic:
 * a peak needs the process-wide total at each allocation); the counts of calls are kept per thread
 * (tcount.h, process-wide: the shim has one table). Read them all with vsp_live_counters. */
struct vsp_counters {
    unsigned long long allocations;
    unsigned long long frees;
    unsigned long long failed;
    unsigned long long host_allocations;
    unsigned long long live_count;
    unsigned long long live_bytes[VSP_MEM_COUNT_];
    unsigned long long device_bytes; /* device kinds' live_bytes summed (in snapshots only) */
    unsigned long long peak_device_bytes;
    unsigned long long untracked; /* allocations the full table could not hold */
    unsigned long long peak_bytes[VSP_MEM_COUNT_]; /* per memory kind (metrics) */
    unsigned long long by_api[VSP_API_COUNT_];     /* successful allocations per API (metrics) */
    unsigned long long nested;    /* inner-layer calls passed through */
    unsigned long long abandoned; /* hooks left by a non-local jump: their calls are not traced */
};

struct vsp_livetable {
    struct vsp_live_slot *slots;
    uint64_t mask;
    struct vsp_counters c;
};

int vsp_livetable_init(struct vsp_livetable *t, size_t capacity);
void vsp_livetable_destroy(struct vsp_livetable *t);

/* A successful allocation. AS-safe. */
void vsp_live_add(struct vsp_livetable *t, unsigned cls, uint64_t addr, uint64_t size,
                  unsigned memory, uint32_t stack_id, uint16_t label, int device);

/* Remove before the real free; fills *out (size, memory) and returns 1 when found. AS-safe. */
int vsp_live_remove(struct vsp_livetable *t, unsigned cls, uint64_t addr, struct vsp_live_slot *out);

/* Live bytes of device memory (its kinds summed). */
unsigned long long vsp_live_device_bytes(const struct vsp_livetable *t);

/* The table's counters as of now: t->c's totals and the per-thread counts summed. */
void vsp_live_counters(const struct vsp_livetable *t, struct vsp_counters *out);

/* Put back an entry whose free failed. AS-safe. */
void vsp_live_restore(struct vsp_livetable *t, unsigned cls, uint64_t addr, const struct vsp_live_slot *e);

#endif
