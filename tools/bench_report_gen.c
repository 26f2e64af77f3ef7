/* Benchmark input for the analyzer: writes a trace of N events (argv[2]) to argv[1] with the
 * shim's own ring writer — alloc/free pairs over a rolling window of 1,000 live allocations, 256
 * distinct stacks of 32 frames, 1 in 1,000 allocations leaked, 1 in 10,000 failing with OOM; the
 * events of eight simulated threads in batches, as the shim writes them (trace format 3). */
#include <stdio.h>
#include <stdlib.h>

#include "ring_fixture.h"

static struct ring_fixture f;

/* Eight simulated threads, each with its batch, as the shim writes events (format 3). */
static struct vsp_batch batches[8];

static void put_event(uint64_t t, uint64_t ptr, uint64_t size, int op, int result, uint32_t stack, uint16_t api)
{
    struct vsp_rec_event e = {0};
    e.time_ns = t;
    e.ptr = ptr;
    e.size = size;
    e.free_bytes = result ? 1 << 20 : UINT64_MAX;
    e.total_bytes = result ? 1ull << 34 : UINT64_MAX;
    e.stack_id = stack;
    e.tid = 1 + (uint32_t)(t % 8);
    e.result = result;
    e.api = api;
    e.op = (uint8_t)op;
    e.memory = VSP_MEM_DEVICE;
    if (vsp_ring_append_event(&f.ring, &batches[e.tid - 1], &e, 1) < 0)
        exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    uint64_t n = strtoull(argv[2], NULL, 10);
    if (ring_fixture_open(&f, 64u << 20, VSP_ON_FULL_WAIT) < 0)
        return 1;
    struct vsp_resv res;
    static const char exe[] = "/opt/bin/bench\0bench";
    struct vsp_rec_process p = {.pid = 1, .exe_len = 15, .argc = 1, .argv_len = 6};
    vsp_ring_reserve(&f.ring, VSP_REC_PROCESS, sizeof p + sizeof exe, &res);
    memcpy(res.payload, &p, sizeof p);
    memcpy((char *)res.payload + sizeof p, exe, sizeof exe);
    vsp_ring_commit(&f.ring, &res);
    for (uint32_t s = 1; s <= 256; s++) {
        vsp_ring_reserve(&f.ring, VSP_REC_STACK, 8 + 32 * 8, &res);
        struct vsp_rec_stack *st = res.payload;
        st->id = s;
        st->nframes = 32;
        uint64_t *fr = (uint64_t *)(st + 1);
        for (int k = 0; k < 32; k++)
            fr[k] = 0x401000 + s * 64 + (uint64_t)k;
        vsp_ring_commit(&f.ring, &res);
    }
    uint64_t live[1000] = {0}, next = 0x7f0000000000, t = 1, ev = 0;
    while (ev < n) {
        unsigned slot = (unsigned)(ev % 1000);
        uint32_t stack = 1 + (uint32_t)(ev % 256);
        if (live[slot] && ev + 1 < n) {
            if (ev % 1000 != 7) /* leak this one */
                put_event(t++, live[slot], 4096, VSP_OP_FREE, 0, stack, VSP_API_cudaFree), ev++;
            live[slot] = 0;
        }
        if (ev % 10000 == 9999) {
            put_event(t++, 0, 1 << 30, VSP_OP_ALLOC, 2, stack, VSP_API_cudaMalloc);
        } else {
            live[slot] = next;
            next += 4096;
            put_event(t++, live[slot], 4096, VSP_OP_ALLOC, 0, stack, VSP_API_cudaMalloc);
        }
        ev++;
    }
    vsp_ring_flush(&f.ring, 1);
    f.ring.hdr->flags |= VSP_FLAG_COMPLETE;
    if (rename(f.path, argv[1]) < 0)
        return 1;
    return 0;
}
