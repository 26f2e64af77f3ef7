/* Recorded stacks (walk/unwind.c): the calling thread's stack captured, its shim frames cut, and
 * interned in the stack store, whose new entries go into the trace as STACK records. */
#ifndef VSP_UNWIND_H
#define VSP_UNWIND_H

#include <stdint.h>

/* Innermost first, shim frames skipped. site (may be NULL): the hook's return address, which the
 * first kept frame must be: with it the walk skips the shim's frames by a learnt count and
 * writes straight into frames. */
/* frames: room for max + 16 entries (the shim's own frames are walked, then cut). */
unsigned vsp_capture_stack(uint64_t *frames, unsigned max, const void *site);
/* The same into a buffer of the shim's own (not on the hook's stack), interned: the stack's id,
 * 0 when none. */
uint32_t vsp_capture_stack_id(unsigned max, const void *site);
uint32_t vsp_stack_id(const uint64_t *frames, unsigned n);
/* vsp_stack_id of the one-frame stack {site}, remembered for the thread's last site. */
uint32_t vsp_site_stack_id(uint64_t site);  /* interns, writes new stacks */
/* The same for native frames followed by Python frames (VSP_PYFRAME words, pyframes.h), with the
 * native frames' hash already computed (vsp_stack_hash(frames, n)). */
uint32_t vsp_stack_id_parts_hashed(const uint64_t *frames, unsigned n, uint64_t hash, const uint64_t *py, unsigned m);
void vsp_stacks_reset(void);
uint64_t vsp_stack_site(uint32_t id);     /* innermost frame of a stack id, 0 if unknown */
int vsp_stacks_init(void);

#endif
