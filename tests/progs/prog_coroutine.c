/* Test program (issue 20, item 8): a ucontext coroutine on a 64 KiB stack from malloc allocates
 * through the CUDA runtime; one 3 MiB allocation made there is never freed. The leak's stack must
 * name coroutine_leaks (the function in the coroutine), not "(no stack)". Prints "coroutine
 * done". */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

static ucontext_t main_ctx, co_ctx;
static int co_rc = -1;

__attribute__((noinline)) static void coroutine_leaks(void)
{
    void *p, *q;
    co_rc = cudaMalloc(&p, 3u << 20); /* leaked */
    if (co_rc == cudaSuccess && cudaMalloc(&q, 4096) == cudaSuccess)
        cudaFree(q);
    __asm__ __volatile__("" ::: "memory");
}

static void coroutine_body(void)
{
    coroutine_leaks();
}

int main(void)
{
    void *p;
    if (cudaMalloc(&p, 1 << 20) == cudaSuccess) /* the runtime's start, on the thread's stack */
        cudaFree(p);
    size_t size = 64 * 1024;
    void *stack = malloc(size);
    if (!stack || getcontext(&co_ctx) != 0)
        return 2;
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = size;
    co_ctx.uc_link = &main_ctx;
    makecontext(&co_ctx, coroutine_body, 0);
    if (swapcontext(&main_ctx, &co_ctx) != 0)
        return 3;
    printf("coroutine done: %d\n", co_rc);
    free(stack);
    return co_rc == cudaSuccess ? 0 : 1;
}
