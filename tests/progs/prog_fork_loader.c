/* Test program: a thread sits in dl_iterate_phdr (the loader's lock held while its callback runs)
 * while the main thread forks 20 times; each child makes a CUDA call (under the shim: its trace is
 * opened, which walks the module list) and exits. glibc does not take the loader's lock around
 * fork, so a child forked while the thread held it inherits it held. Prints "children 20 hung N";
 * a child still running after 5 s counts as hung and is killed (the program never hangs itself). */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static int slow_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size, (void)data;
    for (volatile int k = 0; k < 20000; k++)
        ;
    return 0;
}

static void *iterate(void *arg)
{
    (void)arg;
    while (!stop)
        dl_iterate_phdr(slow_cb, NULL);
    return NULL;
}

int main(void)
{
    void *p;
    cudaMalloc(&p, 64);
    pthread_t t;
    pthread_create(&t, NULL, iterate, NULL);
    usleep(2000);
    int hung = 0;
    for (int i = 0; i < 20; i++) {
        pid_t c = fork();
        if (c == 0) {
            void *q;
            _exit(cudaMalloc(&q, 128) == cudaSuccess ? 0 : 1);
        }
        int st, done = 0;
        for (int w = 0; w < 5000 && !done; w++) {
            if (waitpid(c, &st, WNOHANG) == c)
                done = 1;
            else
                usleep(1000);
        }
        if (!done) {
            hung++;
            kill(c, SIGKILL);
            waitpid(c, &st, 0);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    cudaFree(p);
    printf("children 20 hung %d\n", hung);
    return 0;
}
