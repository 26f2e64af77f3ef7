/* Test program: a parent with a busy second thread allocates 3 buffers, forks; the child
 * allocates 5 buffers and exits; the parent waits, allocates 2 more and exits. Each process must
 * get its own trace (3+2 in the parent's, 5 in the child's). */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *spinner(void *arg)
{
    (void)arg;
    /* bounded, so that a hung child cannot make the parent write an endless trace */
    for (long i = 0; !stop && i < 2000000; i++) {
        void *p;
        if (cudaMalloc(&p, 128) == cudaSuccess)
            cudaFree(p);
    }
    return NULL;
}

static void alloc_n(int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        void *p;
        cudaMalloc(&p, size);
    }
}

int main(void)
{
    pthread_t t;
    alloc_n(3, 1000);
    pthread_create(&t, NULL, spinner, NULL);
    usleep(2000);
    pid_t pid = fork();
    if (pid == 0) {
        alloc_n(5, 2000);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    stop = 1;
    pthread_join(t, NULL);
    alloc_n(2, 3000);
    printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
