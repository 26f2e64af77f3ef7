/* Test program: a cudaFree that blocks (as a real one does while the device finishes a long
 * kernel) must not stall the process's other threads (issue #10). Run with
 * VSP_FAKE_BLOCK_FREE_SIZE=SIZE: thread A allocates SIZE bytes and frees them, and the fake
 * driver holds that free until released. The main thread (B) waits until A is blocked, makes
 * PAIRS cudaMalloc/cudaFree pairs of varied sizes (512 B..32 KiB, never SIZE), releases A
 * (vsp_fake_release_blocked, found in the already loaded libcuda.so.1), waits until A has left
 * the blocked free, then allocates SIZE again (first fit: most likely the address A freed) and
 * keeps it (the one expected leak). alarm(120): a deadlock ends as SIGALRM.
 * Prints "a_malloc A_FREE_CODE... b_errors N last CODE"; exit 0 when every call succeeded.
 * PAIRS (default 50,000) changes the number of B's pairs: 600,000 makes 1.2 million calls while
 * A's free is in flight, more than a reader's reorder window would wait (issue #20, item 6).
 * usage: prog_blockfree SIZE [PAIRS] */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static size_t g_size;
static int a_malloc = -1, a_free = -1;
static int a_allocated; /* atomic */

static void *thread_a(void *arg)
{
    (void)arg;
    void *p = NULL;
    a_malloc = cudaMalloc(&p, g_size);
    __atomic_store_n(&a_allocated, 1, __ATOMIC_RELEASE);
    a_free = cudaFree(p); /* blocks in the fake driver until released */
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The size of B's turn i; before the last one (i == pairs), A is released and has left its free.
 * Out of line, so that every turn's allocation is the same call instruction (one stack). */
static __attribute__((noinline)) size_t turn_size(int i, int pairs, void (*release)(void), int (*blocked)(void))
{
    if (i < pairs)
        return 512u * (1u + (unsigned)(i * 7919) % 64u);
    release();
    for (int k = 0; k < 10000 && blocked() != 0; k++)
        sleep_ms(1);
    return g_size;
}

int main(int argc, char **argv)
{
    alarm(120);
    if (argc < 2)
        return 2;
    g_size = strtoull(argv[1], NULL, 10);
    int pairs = argc > 2 ? atoi(argv[2]) : 50000;
    pthread_t a;
    if (pthread_create(&a, NULL, thread_a, NULL) != 0)
        return 2;
    while (!__atomic_load_n(&a_allocated, __ATOMIC_ACQUIRE))
        sleep_ms(1);
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    void (*release)(void) = drv ? (void (*)(void))dlsym(drv, "vsp_fake_release_blocked") : NULL;
    int (*blocked)(void) = drv ? (int (*)(void))dlsym(drv, "vsp_fake_blocked_frees") : NULL;
    if (!release || !blocked) {
        fprintf(stderr, "the fake driver's release helpers are not there\n");
        return 2;
    }
    for (int i = 0; i < 10000 && blocked() != 1; i++)
        sleep_ms(1);
    if (blocked() != 1) {
        fprintf(stderr, "thread A never blocked in cudaFree (is VSP_FAKE_BLOCK_FREE_SIZE=%zu set?)\n", g_size);
        return 2;
    }
    int b_errors = 0, last_code = -1;
    /* The last allocation is the loop's last turn, made by the same call as the pairs': its stack
     * is known, so it goes into B's open batch, which sits in the trace before A's free (issue
     * #20, item 6: a reader that gave up waiting for A's free would put it after the reuse). */
    for (int i = 0; i <= pairs; i++) {
        void *p = NULL;
        int rc = cudaMalloc(&p, turn_size(i, pairs, release, blocked));
        if (i == pairs) {
            last_code = rc; /* kept: the one expected leak */
            break;
        }
        if (rc != cudaSuccess) {
            b_errors++;
            continue;
        }
        if (cudaFree(p) != cudaSuccess)
            b_errors++;
    }
    pthread_join(a, NULL);
    printf("a_malloc %d a_free %d b_errors %d last %d\n", a_malloc, a_free, b_errors, last_code);
    return a_malloc || a_free || b_errors || last_code;
}
