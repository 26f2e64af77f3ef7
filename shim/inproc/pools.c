/* Stream-ordered memory pools, as far as the shim must know them: which pools are host-located
 * (CUDA 12.2+ cuMemPoolCreate with a host location, CUDA 13's default host pool) and which pool is
 * each device's current one (cuDeviceSetMemPool, cuMemSetMemPool), so that an allocation from a
 * host-located pool is recorded as host memory (memory kind host_pool) and can be refused under
 * VRAMSPY_ENFORCE. Lock-free: pools are noted and forgotten by the pool hooks (rare), looked up by
 * the allocation hooks, and only when some host-located pool exists at all.
 * Must never: allocate, lock, or slow down a process that has no host-located pool. */
#include <cuda.h>
#include <time.h>

#include "shim/base/process.h"
#include "shim/inproc/pools.h"

#include "shim/base/atomic.h"

#define POOLS 1024u    /* distinct pools at once; beyond, a pool is taken for device-located */
#define DEVICES 64u
#define TOMBSTONE 1ull

static struct {
    uint64_t pool; /* 0 empty, TOMBSTONE forgotten */
    int host;
} table[POOLS];
static uint64_t current[DEVICES]; /* a device's current pool as set by the program, 0: its default */
static int any_host;               /* some host-located pool was ever noted */
static int used_async;             /* some stream-ordered allocation happened */

static uint32_t slot_of(uint64_t pool)
{
    return (uint32_t)((pool * 0x9E3779B97F4A7C15ull) >> 54) & (POOLS - 1);
}

void vsp_pool_note(uint64_t pool, int host)
{
    if (pool <= TOMBSTONE)
        return;
    if (host)
        vsp_store_relaxed(&any_host, 1); /* relaxed: only ever turns a slow check on */
    for (uint32_t i = slot_of(pool), n = 0; n < POOLS; n++, i = (i + 1) & (POOLS - 1)) {
        uint64_t k = vsp_load_acquire(&table[i].pool);
        if (k == pool) {
            vsp_store_relaxed(&table[i].host, host);
            return;
        }
        if (k == 0 || k == TOMBSTONE) {
            /* host is written before the key is published (release): a reader that finds the key
             * finds its host flag */
            uint64_t expected = k;
            vsp_store_relaxed(&table[i].host, host);
            if (vsp_cas_acq_rel(&table[i].pool, &expected, pool))
                return;
        }
    }
}

static int vsp_pool_known(uint64_t pool);

void vsp_pool_note_used(uint64_t pool)
{
    if (pool > TOMBSTONE && !vsp_pool_known(pool))
        vsp_pool_note(pool, 0); /* not created or looked up through us: taken for device-located */
}

void vsp_pool_forget(uint64_t pool)
{
    for (uint32_t i = slot_of(pool), n = 0; n < POOLS; n++, i = (i + 1) & (POOLS - 1)) {
        uint64_t k = vsp_load_acquire(&table[i].pool);
        if (k == 0)
            return;
        if (k == pool) {
            vsp_cas_acq_rel(&table[i].pool, &k, TOMBSTONE);
            break;
        }
    }
    for (unsigned d = 0; d < DEVICES; d++) {
        uint64_t cur = pool;
        vsp_cas_acq_rel(&current[d], &cur, 0); /* a destroyed pool is no device's current one */
    }
}

static int vsp_pool_known(uint64_t pool)
{
    for (uint32_t i = slot_of(pool), n = 0; n < POOLS; n++, i = (i + 1) & (POOLS - 1)) {
        uint64_t k = vsp_load_acquire(&table[i].pool); /* acquire: see vsp_pool_note */
        if (k == 0)
            return 0;
        if (k == pool)
            return 1;
    }
    return 0;
}

int vsp_pool_is_host(uint64_t pool)
{
    if (VSP_LIKELY(!vsp_load_relaxed(&any_host)) || pool <= TOMBSTONE)
        return 0;
    for (uint32_t i = slot_of(pool), n = 0; n < POOLS; n++, i = (i + 1) & (POOLS - 1)) {
        /* acquire: pairs with the CAS that published the key after its host flag */
        uint64_t k = vsp_load_acquire(&table[i].pool);
        if (k == 0)
            return 0;
        if (k == pool)
            return vsp_load_relaxed(&table[i].host);
    }
    return 0;
}

void vsp_pool_set_current(int device, uint64_t pool)
{
    if (device >= 0 && (unsigned)device < DEVICES)
        vsp_store_release(&current[device], pool); /* release: pairs with the acquire below */
}

int vsp_current_pool_is_host(void)
{
    if (VSP_LIKELY(!vsp_load_relaxed(&any_host)))
        return 0;
    int32_t d = vsp_current_device();
    return d >= 0 && (unsigned)d < DEVICES && vsp_pool_is_host(vsp_load_acquire(&current[d]));
}

int vsp_location_is_host(int type)
{
    return type == CU_MEM_LOCATION_TYPE_HOST || type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
           type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT;
}

void vsp_pools_used_async(void)
{
    if (VSP_UNLIKELY(!vsp_load_relaxed(&used_async)))
        vsp_store_relaxed(&used_async, 1); /* relaxed: turns sampling of the default pool on */
}

static void sample_one(uint64_t pool, int host, int reason, uint64_t now)
{
    struct vsp_rec_pool p = {.time_ns = now, .pool = pool, .host = (uint32_t)host, .reason = (uint32_t)reason};
    static const int attrs[4] = {CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH,
                                 CU_MEMPOOL_ATTR_USED_MEM_CURRENT, CU_MEMPOOL_ATTR_USED_MEM_HIGH};
    uint64_t *out[4] = {&p.reserved_current, &p.reserved_high, &p.used_current, &p.used_high};
    int any = 0;
    for (int i = 0; i < 4; i++) {
        if (vsp_pool_attribute(pool, attrs[i], out[i]) == 0)
            any = 1;
        else
            *out[i] = VSP_UNKNOWN_BYTES;
    }
    struct vsp_resv res;
    if (any && vsp_ring_reserve(vsp_trace_ring(), VSP_REC_POOL, sizeof p, &res) == 0) {
        *(struct vsp_rec_pool *)res.payload = p;
        vsp_ring_commit(vsp_trace_ring(), &res);
    }
}

void vsp_pools_sample(int reason)
{
    if (vsp_load_relaxed(&used_async)) {
        uint64_t def = vsp_default_pool(vsp_current_device());
        if (def)
            vsp_pool_note(def, 0); /* sampled with the others below */
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    for (uint32_t i = 0; i < POOLS; i++) {
        uint64_t k = vsp_load_acquire(&table[i].pool); /* acquire: see vsp_pool_note */
        if (k > TOMBSTONE)
            sample_one(k, vsp_load_relaxed(&table[i].host), reason, now);
    }
}
