/* Benchmark: start-up cost of a process that never touches CUDA, the posix_spawn harness. Runs
 * `sh -c true` RUNS times (argv[1]) without and with LD_PRELOAD=SHIM (argv[2]), and with
 * LD_PRELOAD=EMPTY (argv[3], optional: an empty library, the cost of any preload), interleaved so
 * all see the same machine state, and prints the median wall time of each, the shim's cost (its
 * median less the plain one) and, with EMPTY, that cost over the empty library's, by wall time and by
 * the child's CPU time (wait4); the order of the three rotates from round to round. tools/
 * bench_startup.py is the same measure through Python's subprocess. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* One start: its wall time (returned) and the child's CPU time, user and system (*cpu; from wait4:
 * the time the child ran, which the machine's other work moves less than the wall time). */
static double run_once(char **envp, double *cpu)
{
    struct timespec a, b;
    char *argv[] = {"/bin/sh", "-c", "true", NULL};
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp) != 0)
        exit(2);
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    clock_gettime(CLOCK_MONOTONIC, &b);
    *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
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
    static char preload[4200], empty[4200];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[2]);
    snprintf(empty, sizeof empty, "LD_PRELOAD=%s", argc > 3 ? argv[3] : "");
    char *plain_env[] = {"PATH=/usr/bin:/bin", NULL};
    char *shim_env[] = {"PATH=/usr/bin:/bin", preload, NULL};
    char *empty_env[] = {"PATH=/usr/bin:/bin", empty, NULL};
    double *p = calloc((size_t)runs, sizeof *p), *s = calloc((size_t)runs, sizeof *s),
           *e = calloc((size_t)runs, sizeof *e), *pc = calloc((size_t)runs, sizeof *pc),
           *sc = calloc((size_t)runs, sizeof *sc), *ec = calloc((size_t)runs, sizeof *ec);
    /* The order rotates from round to round (plain, shim, empty; shim, empty, plain; ...): a start
     * costs a few microseconds more or less by its place in the round (the same empty library
     * measured twice in one round came out 1.08x in its second place), and a fixed order would
     * give that to one of them. */
    for (int i = 0; i < runs; i++) {
        for (int k = 0; k < 3; k++) {
            switch ((i + k) % 3) {
            case 0: p[i] = run_once(plain_env, &pc[i]); break;
            case 1: s[i] = run_once(shim_env, &sc[i]); break;
            default:
                if (argc > 3)
                    e[i] = run_once(empty_env, &ec[i]);
                break;
            }
        }
    }
    qsort(p, (size_t)runs, sizeof *p, cmp);
    qsort(s, (size_t)runs, sizeof *s, cmp);
    qsort(e, (size_t)runs, sizeof *e, cmp);
    qsort(pc, (size_t)runs, sizeof *pc, cmp);
    qsort(sc, (size_t)runs, sizeof *sc, cmp);
    qsort(ec, (size_t)runs, sizeof *ec, cmp);
    double pm = p[runs / 2], sm = s[runs / 2], em = e[runs / 2];
    printf("startup_plain_median_us %.1f\nstartup_shim_median_us %.1f\nstartup_cost_us %.1f\nstartup_ratio %.3f\n",
           pm, sm, sm - pm, sm / pm);
    if (argc > 3)
        printf("startup_empty_median_us %.1f\nstartup_empty_cost_us %.1f\nstartup_cost_vs_empty %.2f\n"
               "startup_minimums_us plain %.1f empty %.1f shim %.1f: cost vs empty %.2f\n",
               em, em - pm, em > pm ? (sm - pm) / (em - pm) : 0.0, p[0], e[0], s[0],
               e[0] > p[0] ? (s[0] - p[0]) / (e[0] - p[0]) : 0.0);
    double pcm = pc[runs / 2], scm = sc[runs / 2], ecm = ec[runs / 2];
    if (argc > 3)
        printf("startup_cpu_medians_us plain %.1f empty %.1f shim %.1f: cost vs empty %.2f\n", pcm, ecm, scm,
               ecm > pcm ? (scm - pcm) / (ecm - pcm) : 0.0);
    return 0;
}
