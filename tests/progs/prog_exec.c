/* Test program: a launcher that checks the GPU, then replaces itself with another program by one
 * of the exec functions (issue #20, item 5). Its trace must end complete (finalised before the
 * exec), and, when the exec fails, the calls after it must still be recorded.
 * usage: prog_exec FUNCTION TARGET
 *   FUNCTION: execve execv execvp execvpe execl execlp execle fexecve
 *   TARGET: the program to exec (run with the single argument "exec-target"); a path that does
 *   not exist makes the exec fail: the launcher then makes 3 more pairs and exits 0.
 * Before the exec: cudaGetDeviceCount, 2 cudaMalloc/cudaFree pairs. Prints "exec failed: ERRNO"
 * when the exec returned. */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int pairs(int n)
{
    int errors = 0;
    for (int i = 0; i < n; i++) {
        void *p = NULL;
        if (cudaMalloc(&p, 1u << 20) != cudaSuccess) {
            errors++;
            continue;
        }
        errors += cudaFree(p) != cudaSuccess;
    }
    return errors;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || pairs(2))
        return 2;
    const char *fn = argv[1], *t = argv[2];
    char *args[] = {(char *)t, "exec-target", NULL};
    fflush(stdout);
    if (!strcmp(fn, "execve"))
        execve(t, args, environ);
    else if (!strcmp(fn, "execv"))
        execv(t, args);
    else if (!strcmp(fn, "execvp"))
        execvp(t, args);
    else if (!strcmp(fn, "execvpe"))
        execvpe(t, args, environ);
    else if (!strcmp(fn, "execl"))
        execl(t, t, "exec-target", (char *)NULL);
    else if (!strcmp(fn, "execlp"))
        execlp(t, t, "exec-target", (char *)NULL);
    else if (!strcmp(fn, "execle"))
        execle(t, t, "exec-target", (char *)NULL, environ);
    else if (!strcmp(fn, "fexecve")) {
        int fd = open(t, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            fexecve(fd, args, environ);
        else
            errno = ENOENT;
    } else {
        return 2;
    }
    printf("exec failed: %s\n", strerror(errno));
    return pairs(3) ? 1 : 0;
}
