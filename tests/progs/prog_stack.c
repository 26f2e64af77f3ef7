/* Test program: CUDA calls on small stacks (issue #20, item 1). A preload shim runs its hooks on
 * the host's stack; threads and coroutines with 16 KiB stacks that work without the shim must
 * work with it, and the stack a hook adds must stay small.
 * usage: prog_stack thread|coroutine [KIB]
 *   a thread (pthread_attr_setstacksize) or a ucontext coroutine with a KIB KiB stack (default 16)
 *   makes the process's first CUDA calls: 50 cudaMalloc/cudaFree pairs from three call sites.
 *   Prints "thread ok" / "coroutine ok".
 * usage: prog_stack measure
 *   the same calls, plus an invalid free (a full stack walk) and a failed allocation (the
 *   out-of-memory breakdown), on a thread whose 1 MiB stack is painted with a pattern first;
 *   prints "used N": the bytes below the thread function's frame that the calls touched (the
 *   deepest byte that lost the pattern). Run with and without the shim, the difference is what
 *   the shim adds. */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#define PATTERN 0xa5
#define MEASURE_STACK (1u << 20)

static int errors;

static __attribute__((noinline)) void site_a(size_t n)
{
    void *p = NULL;
    if (cudaMalloc(&p, n) != cudaSuccess || cudaFree(p) != cudaSuccess)
        errors++;
}

static __attribute__((noinline)) void site_b(size_t n)
{
    void *p = NULL;
    if (cudaMalloc(&p, n) != cudaSuccess || cudaFree(p) != cudaSuccess)
        errors++;
}

static __attribute__((noinline)) void site_c(size_t n)
{
    void *p = NULL;
    if (cudaMallocManaged(&p, n, cudaMemAttachGlobal) != cudaSuccess || cudaFree(p) != cudaSuccess)
        errors++;
}

static void calls(int hostile)
{
    for (int i = 0; i < 50; i++) {
        size_t n = 4096u * (1u + (unsigned)i % 5u);
        switch (i % 3) {
        case 0: site_a(n); break;
        case 1: site_b(n); break;
        default: site_c(n); break;
        }
    }
    if (hostile) {
        cudaFree((void *)(uintptr_t)0x1234000); /* never allocated: an invalid free, walked in full */
        void *p = NULL;
        cudaMalloc(&p, (size_t)1 << 50);        /* fails: out of memory */
        cudaGetLastError();
    }
}

static void *thread_fn(void *arg)
{
    calls(0);
    (void)arg;
    return NULL;
}

static ucontext_t main_ctx, co_ctx;

static void co_fn(void)
{
    calls(0);
}

static volatile unsigned char *frame_mark;

static __attribute__((noinline)) void *measure_fn(void *arg)
{
    volatile unsigned char here = 0;
    frame_mark = &here;
    calls(1);
    return arg;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    size_t kib = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
    if (!strcmp(argv[1], "thread")) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        if (pthread_attr_setstacksize(&a, kib << 10) != 0)
            return 2;
        pthread_t t;
        if (pthread_create(&t, &a, thread_fn, NULL) != 0)
            return 2;
        pthread_join(t, NULL);
        printf("thread %s\n", errors ? "errors" : "ok");
    } else if (!strcmp(argv[1], "coroutine")) {
        void *stack = mmap(NULL, kib << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stack == MAP_FAILED)
            return 2;
        getcontext(&co_ctx);
        co_ctx.uc_stack.ss_sp = stack;
        co_ctx.uc_stack.ss_size = kib << 10;
        co_ctx.uc_link = &main_ctx;
        makecontext(&co_ctx, co_fn, 0);
        if (swapcontext(&main_ctx, &co_ctx) != 0)
            return 2;
        printf("coroutine %s\n", errors ? "errors" : "ok");
    } else if (!strcmp(argv[1], "measure")) {
        unsigned char *stack = mmap(NULL, MEASURE_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stack == MAP_FAILED)
            return 2;
        memset(stack, PATTERN, MEASURE_STACK);
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstack(&a, stack, MEASURE_STACK);
        pthread_t t;
        if (pthread_create(&t, &a, measure_fn, NULL) != 0)
            return 2;
        pthread_join(t, NULL);
        size_t low = 0;
        while (low < MEASURE_STACK && stack[low] == PATTERN)
            low++;
        printf("used %zu\n", (size_t)((uintptr_t)frame_mark - (uintptr_t)(stack + low)));
    } else {
        return 2;
    }
    return 0;
}
