/* Benchmark: the ring alone, without CUDA or a test double in the way: ns per event per thread for
 * THREADS (argv[2]) threads writing N (argv[1]) events each into a 4 MiB ring drained to a file,
 * as format-2 records (one 112-byte EVENT record each: a CAS on the shared ring head per event) and
 * as format-3 batches (the shim's path: coded events in the thread's own batch). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ring_fixture.h"

static struct ring_fixture f;
static int batches;
static long n_events;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *writer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    struct vsp_batch tb = {0};
    for (long i = 0; i < n_events; i++) {
        struct vsp_rec_event e = {.api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE,
                                  .ptr = 0x7f0000000000ull + (uint64_t)(i % 64) * 4096,
                                  .size = 256 + (uint64_t)(i % 64) * 512, .time_ns = (uint64_t)i * 300,
                                  .tid = id, .stack_id = 3, .free_bytes = UINT64_MAX, .total_bytes = UINT64_MAX};
        if (batches) {
            vsp_ring_append_event(&f.ring, &tb, &e, 1);
        } else {
            struct vsp_resv r;
            if (vsp_ring_reserve(&f.ring, VSP_REC_EVENT, sizeof e, &r) == 0) {
                e.seq = vsp_ring_next_seq(&f.ring);
                memcpy(r.payload, &e, sizeof e);
                vsp_ring_commit(&f.ring, &r);
            }
        }
    }
    return NULL;
}

static double run(int use_batches, int threads)
{
    batches = use_batches;
    if (ring_fixture_open(&f, 4u << 20, VSP_ON_FULL_WAIT) < 0)
        exit(1);
    pthread_t t[8];
    double a = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    vsp_ring_flush(&f.ring, 1);
    double b = now();
    ring_fixture_close(&f);
    return (b - a) * 1e9 / (double)n_events;
}

int main(int argc, char **argv)
{
    n_events = argc > 1 ? atol(argv[1]) : 2000000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (n_events < 1 || threads < 1 || threads > 8)
        return 2;
    double rec = run(0, threads), bat = run(1, threads);
    printf("ring: %d thread(s), %ld events each: format-2 records %.1f ns/event, format-3 batches %.1f ns/event\n",
           threads, n_events, rec, bat);
    return 0;
}
