/* Test program of the walk memo and the stack ids kept with it (issue 22): allocations from three
 * sibling call sites (same caller, same frame size, so one walk's memo matches the next at the
 * levels below and above the sibling), at recursion depths that change from call to call (the
 * memo's levels at other depths), from the main thread and a second one, and frees from two sites.
 * Every tenth allocation is kept (a leak); the size says which site made it (4096 * (site + 1)),
 * so a stack given to the wrong site shows in the report as a leak of the wrong size there.
 * Prints "leaks a N b N c N" (the leaks it made per site, both threads together). */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>

static int errors, leaks[3];
static volatile int sink;

static __attribute__((noinline)) void one(int site, int i)
{
    void *p = NULL;
    if (cudaMalloc(&p, 4096 * (size_t)(site + 1)) != cudaSuccess) {
        errors++;
        return;
    }
    if (i % 10 == 0) {
        __atomic_fetch_add(&leaks[site], 1, __ATOMIC_RELAXED);
        return;
    }
    if (i & 1) {
        if (cudaFree(p) != cudaSuccess)
            errors++;
    } else {
        sink++;
        if (cudaFree(p) != cudaSuccess) /* another free site */
            errors++;
    }
}

static __attribute__((noinline)) void site_a(int i) { one(0, i); sink++; }
static __attribute__((noinline)) void site_b(int i) { one(1, i); sink += 2; }
static __attribute__((noinline)) void site_c(int i) { one(2, i); sink += 3; }

static __attribute__((noinline)) void down(int d, int i)
{
    if (d > 0) {
        down(d - 1, i);
        sink++;
        return;
    }
    switch ((i * 7 + i / 3) % 3) {
    case 0: site_a(i); break;
    case 1: site_b(i); break;
    default: site_c(i); break;
    }
}

/* down, with the site chosen by the caller */
static __attribute__((noinline)) void down2(int d, int site, int i)
{
    if (d > 0) {
        down2(d - 1, site, i);
        sink++;
        return;
    }
    switch (site) {
    case 0: site_a(i); break;
    case 1: site_b(i); break;
    default: site_c(i); break;
    }
}

static void *run(void *arg)
{
    int base = (int)(long)arg;
    for (int i = base; i < base + 3000; i++)
        down(i % 5 == 4 ? 0 : (i / 7) % 4, i);
    /* Runs of five calls from one site at one depth, then the next site at the same depth: the
     * memo's repeat check (walker.h) is built on the second call of a run and used from the third,
     * and the next site differs from it in one return address at the same rsp. */
    for (int i = base + 3000; i < base + (base ? 3000 : 6000); i++) { /* the main thread's (the report's size) */
        int run_no = (i - base - 3000) / 5, site = run_no % 3;
        down2((run_no / 3) % 2, site, i);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, run, (void *)10000L) != 0)
        return 2;
    run((void *)0L);
    pthread_join(t, NULL);
    printf("leaks a %d b %d c %d\n", leaks[0], leaks[1], leaks[2]);
    return errors ? 1 : 0;
}
