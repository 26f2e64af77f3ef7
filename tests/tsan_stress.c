/* ThreadSanitizer stress of the shim's lock-free core (ring, stack store, live table), built and
 * run by `make SANITIZER=thread test` (Criterion itself cannot run under TSan). Exits non-zero on
 * a lost or duplicated record; TSan reports races on its own. */
#include <pthread.h>
#include <stdio.h>

#include "shim/base/livetable.h"
#include "ring_fixture.h"
#include "shim/base/stackstore.h"

/* Intern and, when this call claimed the entry, publish at once (as the shim does after writing
 * the stack record). */
static uint32_t intern_pub(struct vsp_stackstore *s, uint64_t hash, int *is_new)
{
    struct vsp_stack_slot *claim;
    uint32_t id = vsp_stackstore_intern(s, hash, is_new, &claim);
    if (claim)
        vsp_stackstore_publish(claim, id);
    return id;
}
#include "report/read/trace_reader.h"

enum { THREADS = 4, PER = 20000 };
static struct ring_fixture f;
static struct vsp_stackstore stacks;
static struct vsp_livetable live;

static void *worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < PER; i++) {
        uint64_t frames[2] = {id, i % 97};
        int is_new;
        intern_pub(&stacks, vsp_stack_hash(frames, 2), &is_new);
        uint64_t addr = (id << 40) | (i << 8);
        vsp_live_add(&live, VSP_CLASS_DEVPTR, addr, 256, VSP_MEM_DEVICE, 1, 0, 0);
        ring_fixture_event(&f, (id << 32) | (i + 1), 1);
        struct vsp_live_slot e;
        if (!vsp_live_remove(&live, VSP_CLASS_DEVPTR, addr, &e))
            __atomic_add_fetch(&live.c.untracked, 1000000, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(void)
{
    if (ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT) < 0 || vsp_stackstore_init(&stacks, 1 << 16) < 0 ||
        vsp_livetable_init(&live, 1 << 16) < 0)
        return 2;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    vsp_ring_flush(&f.ring, 1);
    char err[600];
    struct vsp_reader *r = vsp_reader_open(f.path, err, sizeof err);
    if (!r)
        return 2;
    struct vsp_record rec;
    uint64_t n = 0;
    while (vsp_reader_next(r, &rec) > 0)
        n++;
    vsp_reader_close(r);
    ring_fixture_close(&f);
    struct vsp_counters c;
    vsp_live_counters(&live, &c);
    int ok = n == (uint64_t)THREADS * PER && c.live_count == 0 && c.untracked == 0 && live.c.untracked == 0;
    printf("tsan_stress: %llu records, live %llu: %s\n", (unsigned long long)n, c.live_count,
           ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
