/* Test program: a watchdog jumps out of a blocked cudaFree (issue #20, item 7). Run with
 * VSP_FAKE_BLOCK_FREE_SIZE=SIZE: the main thread allocates SIZE bytes and frees them, the fake
 * driver blocks that free, a watchdog thread sees it blocked and sends SIGUSR1, whose handler
 * siglongjmps out of the free. The main thread then makes PAIRS cudaMalloc/cudaFree pairs of
 * 4 KiB, which must all be traced. The blocked free is never released: the jump left the fake's
 * condition variable with a waiter that is gone, and a broadcast would wait for it forever.
 * Prints "jumped J pairs P errors E"; exit 0 when the jump happened and every pair succeeded.
 * usage: prog_longjmp SIZE [PAIRS] */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf env;
static pthread_t main_thread;
static int (*blocked)(void);

static void on_watchdog(int sig)
{
    (void)sig;
    siglongjmp(env, 1);
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000 && blocked() != 1; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

int main(int argc, char **argv)
{
    alarm(120);
    if (argc < 2)
        return 2;
    size_t size = strtoull(argv[1], NULL, 10);
    int pairs = argc > 2 ? atoi(argv[2]) : 10;
    void *p = NULL;
    if (cudaMalloc(&p, size) != cudaSuccess)
        return 2;
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    blocked = drv ? (int (*)(void))dlsym(drv, "vsp_fake_blocked_frees") : NULL;
    if (!blocked)
        return 2;
    struct sigaction sa = {.sa_handler = on_watchdog};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    main_thread = pthread_self();
    pthread_t w;
    if (pthread_create(&w, NULL, watchdog, NULL) != 0)
        return 2;
    volatile int jumped = 0;
    if (sigsetjmp(env, 1) == 0)
        cudaFree(p); /* blocks until the watchdog jumps out of it */
    else
        jumped = 1;
    pthread_join(w, NULL);
    int errors = 0;
    for (int i = 0; i < pairs; i++) {
        void *q = NULL;
        if (cudaMalloc(&q, 4096) != cudaSuccess) {
            errors++;
            continue;
        }
        errors += cudaFree(q) != cudaSuccess;
    }
    printf("jumped %d pairs %d errors %d\n", jumped, pairs, errors);
    return jumped && !errors ? 0 : 1;
}
