/* Test program: process shapes a preloaded shim must not change (issue #10), one per mode
 * (argv[1]); tests/test_shim_shapes.c runs each with and without the shim and compares.
 *   closerange DATA - 10 cudaMalloc/cudaFree pairs; close_range(3, ~0U, 0) (the raw system call, as
 *                 daemons do); open DATA (gets fd 3) and DATA.1 .. DATA.4 (fds 4-7: whatever the shim or
 *                 its libraries had there); 5000 more pairs (sizes 512 B..20 KiB); write
 *                 data_line(0..1999) to DATA and aux_line(k, 0..99) to DATA.k; close them.
 *                 Prints "datafd N N N N N".
 *   closerange-thread DATA - the same, but the 5000 pairs after close_range are made by a new
 *                 thread (its first stack walk is where an unwinder may reopen what it had open).
 *   closed12 A B - close fd 1 and 2; 20 pairs; open A and B (the lowest free numbers: 1 and 2);
 *                 write "text for file A\n" to fd 1 and "text for file B\n" to fd 2 (what stdio
 *                 would do); 3000 more pairs; return from main.
 *   many N      - N cudaMalloc/cudaFree pairs of 4 KiB; prints "done N".
 *   rawfork     - 3 cudaMalloc of 1000 B; syscall(SYS_fork) (no atfork handler runs); the child
 *                 makes 5 cudaMalloc of 2000 B and _exit(0)s; the parent waits, makes 2 cudaMalloc
 *                 of 3000 B; prints "child STATUS".
 *   zero        - cudaMalloc(&p, 0) then cudaFree(p); prints the codes and whether p is NULL.
 *   pipe        - prints one line, sleeps 300 ms (the reader of the pipe has gone by then), then
 *                 10 cudaMalloc of 1 MiB and 8 frees; prints nothing more.
 *   pipe-oom    - the same, then a cudaMalloc larger than the device (fails); prints nothing more.
 *   noinit      - one cudaMalloc; prints its code and error string; exit 1 if it failed (run with
 *                 CUDA_VISIBLE_DEVICES= to make the runtime's initialisation fail).
 * Every mode arms alarm(60): a hang ends as SIGALRM, never as a stuck test. */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024ull * 1024ull)

static int pairs(int n, size_t (*size_of)(int))
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        void *p;
        if (cudaMalloc(&p, size_of(i)) != cudaSuccess) {
            bad++;
            continue;
        }
        if (cudaFree(p) != cudaSuccess)
            bad++;
    }
    return bad;
}

static size_t size_small(int i) { return 4096u * (unsigned)(i + 1); }
static size_t size_varied(int i) { return 512u * (unsigned)(1 + i % 40); }
static size_t size_4k(int i) { (void)i; return 4096; }

/* The data file's known content: one line per call, the test rebuilds the same lines. */
static int data_line(char *buf, size_t len, int i)
{
    return snprintf(buf, len, "data line %04d of the program's own file\n", i);
}

static int aux_line(char *buf, size_t len, int k, int i)
{
    return snprintf(buf, len, "aux file %d line %02d\n", k, i);
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *pairs_thread(void *arg)
{
    *(int *)arg = pairs(5000, size_varied);
    return NULL;
}

static int closerange(const char *data, int in_thread)
{
    int bad = pairs(10, size_small);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
        perror("close_range");
        return 2;
    }
    int fd = open(data, O_WRONLY | O_CREAT | O_TRUNC, 0644), aux[5];
    if (fd < 0) {
        perror(data);
        return 2;
    }
    printf("datafd %d", fd);
    for (int k = 1; k <= 4; k++) {
        char name[4200];
        snprintf(name, sizeof name, "%s.%d", data, k);
        aux[k] = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (aux[k] < 0) {
            perror(name);
            return 2;
        }
        printf(" %d", aux[k]);
    }
    printf("\n");
    if (in_thread) {
        pthread_t t;
        int tbad = 0;
        if (pthread_create(&t, NULL, pairs_thread, &tbad) != 0 || pthread_join(t, NULL) != 0)
            return 2;
        bad += tbad;
    } else {
        bad += pairs(5000, size_varied);
    }
    char line[128];
    for (int i = 0; i < 2000; i++) {
        int n = data_line(line, sizeof line, i);
        if (write_all(fd, line, (size_t)n) < 0) {
            perror("write");
            return 2;
        }
    }
    for (int k = 1; k <= 4; k++)
        for (int i = 0; i < 100; i++) {
            int n = aux_line(line, sizeof line, k, i);
            if (write_all(aux[k], line, (size_t)n) < 0) {
                perror("write");
                return 2;
            }
        }
    if (close(fd) != 0)
        return 2;
    for (int k = 1; k <= 4; k++)
        if (close(aux[k]) != 0)
            return 2;
    printf("bad %d\n", bad);
    return bad ? 1 : 0;
}

static int closed12(const char *a, const char *b)
{
    close(1);
    close(2);
    int bad = pairs(20, size_small);
    int fa = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fb = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fa < 0 || fb < 0)
        return 2;
    /* a program that closed its stdio and opened two files expects them to be stdout and stderr */
    static const char ta[] = "text for file A\n", tb[] = "text for file B\n";
    if (write_all(1, ta, sizeof ta - 1) < 0 || write_all(2, tb, sizeof tb - 1) < 0)
        return 3;
    bad += pairs(3000, size_varied);
    return bad ? 1 : 0;
}

static int many(int n)
{
    int bad = pairs(n, size_4k);
    printf("done %d bad %d\n", n, bad);
    return bad ? 1 : 0;
}

static void alloc_n(int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        void *p;
        cudaMalloc(&p, size);
    }
}

static int rawfork(void)
{
    alloc_n(3, 1000);
    fflush(stdout);
    long pid = syscall(SYS_fork);
    if (pid < 0)
        return 2;
    if (pid == 0) {
        alloc_n(5, 2000);
        _exit(0);
    }
    int st;
    if (waitpid((pid_t)pid, &st, 0) < 0)
        return 2;
    alloc_n(2, 3000);
    printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

static int zero(void)
{
    void *p = (void *)1;
    cudaError_t r = cudaMalloc(&p, 0);
    printf("malloc0 %d null %d\n", r, p == NULL);
    printf("free %d\n", cudaFree(p));
    return r == cudaSuccess ? 0 : 1;
}

static int pipe_mode(int oom)
{
    printf("first line\n");
    fflush(stdout);
    usleep(300000);
    void *p[10];
    for (int i = 0; i < 10; i++)
        cudaMalloc(&p[i], 1 * MiB);
    for (int i = 0; i < 8; i++)
        cudaFree(p[i]);
    if (oom) {
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        void *big;
        if (cudaMalloc(&big, tot * 2) != cudaErrorMemoryAllocation)
            return 1;
        cudaGetLastError();
    }
    return 0;
}

static int noinit(void)
{
    void *p;
    cudaError_t r = cudaMalloc(&p, 1 * MiB);
    printf("malloc %d %s\n", r, cudaGetErrorString(r));
    return r == cudaSuccess ? 0 : 1;
}

int main(int argc, char **argv)
{
    alarm(60);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "closerange") && argc > 2)
        return closerange(argv[2], 0);
    if (!strcmp(mode, "closerange-thread") && argc > 2)
        return closerange(argv[2], 1);
    if (!strcmp(mode, "closed12") && argc > 3)
        return closed12(argv[2], argv[3]);
    if (!strcmp(mode, "many") && argc > 2)
        return many(atoi(argv[2]));
    if (!strcmp(mode, "rawfork"))
        return rawfork();
    if (!strcmp(mode, "zero"))
        return zero();
    if (!strcmp(mode, "pipe"))
        return pipe_mode(0);
    if (!strcmp(mode, "pipe-oom"))
        return pipe_mode(1);
    if (!strcmp(mode, "noinit"))
        return noinit();
    fprintf(stderr, "usage: prog_shapes closerange[-thread] DATA | closed12 A B | many N | rawfork | zero | pipe | "
                    "pipe-oom | noinit\n");
    return 2;
}
