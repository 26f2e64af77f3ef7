/* Memory pools the shim knows (pools.c): host-located ones and each device's current pool. A
 * forked child keeps its parent's table: the pool handles are the same. */
#ifndef VSP_POOLS_H
#define VSP_POOLS_H

#include <stdint.h>

void vsp_pool_note(uint64_t pool, int host);   /* created or looked up, host-located or not */
void vsp_pool_forget(uint64_t pool);           /* destroyed */
void vsp_pool_note_used(uint64_t pool);        /* named by the program: sampled (location unchanged) */
int vsp_pool_is_host(uint64_t pool);
void vsp_pool_set_current(int device, uint64_t pool);
int vsp_current_pool_is_host(void);            /* the calling thread's device's current pool */
int vsp_location_is_host(int cu_mem_location_type);
void vsp_pools_used_async(void);               /* a stream-ordered allocation happened */
void vsp_pools_sample(int reason);             /* POOL records for the known pools (trace open) */

#endif
