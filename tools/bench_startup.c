/* Benchmark: start-up cost of a process that never touches CUDA. Runs `sh -c true` RUNS times
 * (argv[1]) without and with LD_PRELOAD=SHIM (argv[2]), interleaved so both see the same machine
 * state, and prints the mean wall time of each and the difference per process. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double run_once(char **envp)
{
    struct timespec a, b;
    char *argv[] = {"/bin/sh", "-c", "true", NULL};
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp) != 0)
        exit(2);
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 300;
    if (argc < 3 || runs < 10)
        return 2;
    static char preload[4200];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[2]);
    char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};
    char *shim_env[] = {"PATH=/usr/bin:/bin", preload, NULL};
    double *p = calloc((size_t)runs, sizeof *p), *s = calloc((size_t)runs, sizeof *s);
    for (int i = 0; i < runs; i++) {
        p[i] = run_once(plain_env);
        s[i] = run_once(shim_env);
    }
    qsort(p, (size_t)runs, sizeof *p, cmp);
    qsort(s, (size_t)runs, sizeof *s, cmp);
    double pm = p[runs / 2], sm = s[runs / 2];
    printf("startup_plain_median_us %.1f\nstartup_shim_median_us %.1f\nstartup_cost_us %.1f\nstartup_ratio %.3f\n",
           pm, sm, sm - pm, sm / pm);
    return 0;
}
