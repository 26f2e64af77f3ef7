/* Test library: another interposer, preloaded after vramspy (the shape of HAMi-core's libvgpu.so,
 * which also exports cudaMalloc/cuMemAlloc_v2): its cudaMalloc counts calls and forwards with
 * dlsym(RTLD_NEXT). vramspy's hook must chain to it, as the dynamic linker would have bound the
 * program to it without vramspy. The count is printed on stderr at exit, when there was a call (the
 * report's tests dlopen this library only for its symbols: nothing to say there). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>

static int calls;

int cudaMalloc(void **p, size_t size)
{
    static int (*next)(void **, size_t);
    if (!next)
        next = (int (*)(void **, size_t))dlsym(RTLD_NEXT, "cudaMalloc");
    calls++;
    return next ? next(p, size) : 35;
}

__attribute__((destructor)) static void report(void)
{
    if (calls)
        fprintf(stderr, "counter: %d cudaMalloc calls\n", calls);
}
