/* Test library (issue 21): a thread created in C, which has no Python thread state, calls
 * cudaMalloc while the thread that started it (holding the GIL) waits: its stack must carry native
 * frames only. Called from tests/progs/pyframes.py through ctypes. */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stddef.h>

static void *thread_main(void *arg)
{
    void *p = NULL;
    cudaMalloc(&p, *(size_t *)arg);
    return p;
}

int pythread_alloc(size_t size)
{
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, &size) != 0)
        return -1;
    return pthread_join(t, NULL);
}

/* Two native paths to cudaMalloc for one Python call site (tests/progs/pyframes_repeat.py): the
 * same Python frames with other native frames are another stack. */
__attribute__((noinline)) int pythread_alloc_here(size_t size)
{
    void *p = NULL;
    int r = cudaMalloc(&p, size);
    __asm__ volatile("" ::: "memory"); /* not a tail call: this frame stays on the stack */
    return r;
}

__attribute__((noinline)) int pythread_alloc_other(size_t size)
{
    void *p = NULL;
    int r = cudaMalloc(&p, size);
    __asm__ volatile("" ::: "memory");
    return r;
}
