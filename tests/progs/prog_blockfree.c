/* Test program: a cudaFree that blocks (as a real one does while the device finishes a long
 * kernel) must not stall the process's other threads (issue #10). Run with
 * VSP_FAKE_BLOCK_FREE_SIZE=SIZE: thread A allocates SIZE bytes and frees them, and the fake
 * driver holds that free until released. The main thread (B) waits until A is blocked, makes
 * 50,000 cudaMalloc/cudaFree pairs of varied sizes (512 B..32 KiB, never SIZE), releases A
 * (vsp_fake_release_blocked, found in the already loaded libcuda.so.1), waits until A has left
 * the blocked free, then allocates SIZE again (first fit: most likely the address A freed) and
 * keeps it (the one expected leak). alarm(120): a deadlock ends as SIGALRM.
 * Prints "a_malloc A_FREE_CODE... b_errors N last CODE"; exit 0 when every call succeeded.
 * usage: prog_blockfree SIZE */
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

int main(int argc, char **argv)
{
    alarm(120);
    if (argc < 2)
        return 2;
    g_size = strtoull(argv[1], NULL, 10);
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
    int b_errors = 0;
    for (int i = 0; i < 50000; i++) {
        void *p;
        size_t size = 512u * (1u + (unsigned)(i * 7919) % 64u);
        if (cudaMalloc(&p, size) != cudaSuccess) {
            b_errors++;
            continue;
        }
        if (cudaFree(p) != cudaSuccess)
            b_errors++;
    }
    release();
    for (int i = 0; i < 10000 && blocked() != 0; i++)
        sleep_ms(1);
    void *last = NULL;
    int last_code = cudaMalloc(&last, g_size); /* kept: the one expected leak */
    pthread_join(a, NULL);
    printf("a_malloc %d a_free %d b_errors %d last %d\n", a_malloc, a_free, b_errors, last_code);
    return a_malloc || a_free || b_errors || last_code;
}
