/* Stack store: maps a captured stack (by 64-bit hash) to a small id, so that each distinct stack
 * is written to the trace once and events refer to it by id. Lock-free open addressing in a
 * fixed-size table (mmap'd, pages touched on demand). When the table is full the caller gets a
 * fresh id every time and writes the stack again: memory stays bounded, output stays correct. */
#ifndef VSP_STACKSTORE_H
#define VSP_STACKSTORE_H

#include <stddef.h>
#include <stdint.h>

struct vsp_stack_slot {
    uint64_t key;  /* stack hash (never 0), 0 = empty */
    uint32_t id;   /* 0 until the inserting thread publishes it */
    uint32_t pad;
};

struct vsp_stackstore {
    struct vsp_stack_slot *slots;
    uint64_t mask;
    uint32_t next_id;   /* atomic */
    uint32_t overflow;  /* atomic: lookups that found no room */
};

/* 0 or -errno. capacity is rounded up to a power of two. */
int vsp_stackstore_init(struct vsp_stackstore *s, size_t capacity);
void vsp_stackstore_destroy(struct vsp_stackstore *s);

/* Hash of a frame array (never 0). AS-safe. */
uint64_t vsp_stack_hash(const uint64_t *frames, unsigned n);

/* Id for `hash`; *is_new = 1 when the caller must write the stack record. When *claim is set on
 * return, the caller owns a new table entry: it writes the stack record first and then calls
 * vsp_stackstore_publish(claim, id), so that no other thread can use the id (and write an event
 * naming it) before the record is in the trace. AS-safe. */
uint32_t vsp_stackstore_intern(struct vsp_stackstore *s, uint64_t hash, int *is_new,
                               struct vsp_stack_slot **claim);
void vsp_stackstore_publish(struct vsp_stack_slot *claim, uint32_t id);

#endif
