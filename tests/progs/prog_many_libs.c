/* Test program (issue 20, item 9): loads COUNT copies of libmany.so (DIR/libmany_0000.so on, made
 * by the build) RTLD_LOCAL, in order, then calls through the one loaded last into leak_leaf, which
 * leaks 5 MiB. The leak's stack must hold that library's frame and call_into_last_library, which
 * called into it: a walker whose module table drops the newest modules loses the caller (the
 * library is built without frame pointers). Usage: prog_many_libs DIR COUNT; prints "loaded N". */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "many.h"

static void leak_leaf(void *arg)
{
    void *p;
    *(int *)arg = cudaMalloc(&p, 5u << 20); /* leaked */
    __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static int call_into_last_library(many_step_fn last)
{
    static struct many_chain c;
    int rc = -1;
    c.n = 1;
    c.leaf = leak_leaf;
    c.arg = &rc;
    c.step[0] = last;
    last(&c, 0);
    __asm__ __volatile__("" ::: "memory");
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int count = atoi(argv[2]);
    void *p;
    if (cudaMalloc(&p, 1 << 20) == cudaSuccess) /* the runtime's start: the module table exists */
        cudaFree(p);
    void *h = NULL;
    for (int i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/libmany_%04d.so", argv[1], i);
        if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
            fprintf(stderr, "%s\n", dlerror());
            return 3;
        }
    }
    many_step_fn last = h ? (many_step_fn)dlsym(h, "many_step") : NULL;
    if (!last)
        return 4;
    int rc = call_into_last_library(last);
    printf("loaded %d: %d\n", count, rc);
    return rc == cudaSuccess ? 0 : 1;
}
