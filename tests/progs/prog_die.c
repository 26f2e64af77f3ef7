/* Test program: allocates COUNT (argv[2], default 100) device buffers of 4 KiB with cudaMalloc,
 * writing "ready N" to stdout, then ends the way argv[1] says: exit, _exit (with status argv[3]), abort, segv, kill
 * (raise SIGKILL), wait (block until killed from outside), or drip (then one more 4 KiB buffer every
 * 50 ms until killed: a growing trace). */
#include <cuda_runtime_api.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "exit";
    int count = argc > 2 ? atoi(argv[2]) : 100;
    for (int i = 0; i < count; i++) {
        void *p;
        if (cudaMalloc(&p, 4096) != cudaSuccess)
            return 3;
    }
    printf("ready %d\n", count);
    fflush(stdout);
    if (!strcmp(how, "_exit"))
        _exit(argc > 3 ? atoi(argv[3]) : 0);
    if (!strcmp(how, "abort"))
        abort();
    if (!strcmp(how, "segv"))
        raise(SIGSEGV);
    if (!strcmp(how, "kill"))
        raise(SIGKILL);
    if (!strcmp(how, "wait"))
        for (;;)
            pause();
    if (!strcmp(how, "drip"))
        for (;;) {
            void *p;
            usleep(50000);
            cudaMalloc(&p, 4096);
        }
    return 0;
}
