/* Test program: a worker that initialises CUDA, then sandboxes itself with a seccomp filter that
 * kills the process on open/openat/openat2/creat (issue #20, item 2), then allocates and frees.
 * Under the shim it must run as without it: the trace is opened at the first CUDA call, and no
 * file is opened by a hook after that.
 * usage: prog_sandbox runtime|driver [PAIRS]
 *   runtime: the first CUDA call is cudaGetDeviceCount (the runtime's own initialisation);
 *   driver:  cuInit(0) through dlsym on the loaded libcuda.so.1, then the runtime.
 * Prints "sandboxed PAIRS pairs, errors N"; exit 0 when every call succeeded, 2 on a set-up error.
 * The filter is written by hand (no libseccomp). */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_openat2
#define __NR_openat2 437
#endif

static int sandbox(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_creat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int pairs = argc > 2 ? atoi(argv[2]) : 100;
    if (strcmp(argv[1], "driver") == 0) {
        void *h = dlopen("libcuda.so.1", RTLD_NOW);
        int (*init)(unsigned) = h ? (int (*)(unsigned))dlsym(h, "cuInit") : NULL;
        if (!init || init(0) != 0) {
            fprintf(stderr, "cuInit failed\n");
            return 2;
        }
    } else {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
            fprintf(stderr, "no device\n");
            return 2;
        }
    }
    if (sandbox() != 0) {
        perror("seccomp");
        return 2;
    }
    int errors = 0;
    for (int i = 0; i < pairs; i++) {
        void *p = NULL;
        if (cudaMalloc(&p, 4096u * (1u + (unsigned)i % 7u)) != cudaSuccess) {
            errors++;
            continue;
        }
        errors += cudaFree(p) != cudaSuccess;
    }
    printf("sandboxed %d pairs, errors %d\n", pairs, errors);
    fflush(stdout);
    return errors ? 1 : 0;
}
