/* Unit tests of the per-thread event counters (shim/base/tcount.c): the sums are exact whatever
 * the threads do — more threads over a run than there are stripes, counts taken up on one thread
 * and down on another, a signal handler counting on the counting thread, a child after fork. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim/base/tcount.h"

#define WAVE 8
#define WAVES 160 /* 1,280 threads over the run: more than the 512 stripes */
#define PER 1000

static void *count_some(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER; i++) {
        VSP_TC_ADD(allocations, 1);
        VSP_TC_ADD(by_api[3], 2);
    }
    return NULL;
}

Test(tcount, threads_that_come_and_go_beyond_the_stripes_lose_no_count)
{
    for (int w = 0; w < WAVES; w++) {
        pthread_t t[WAVE];
        for (int i = 0; i < WAVE; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, count_some, NULL), 0);
        for (int i = 0; i < WAVE; i++)
            pthread_join(t[i], NULL);
    }
    struct vsp_tcounts c;
    vsp_tc_sum(&c);
    cr_assert_eq(c.allocations, (unsigned long long)WAVE * WAVES * PER);
    cr_assert_eq(c.by_api[3], 2ull * WAVE * WAVES * PER);
}

/* Threads that never exit hold their stripes: the ones past the last stripe share one. */
static pthread_barrier_t hold;
static void *count_and_hold(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER; i++)
        VSP_TC_ADD(frees, 1);
    pthread_barrier_wait(&hold);
    return NULL;
}

Test(tcount, more_live_threads_than_stripes_share_one_exactly)
{
    enum { N = 600 };
    static pthread_t t[N];
    pthread_barrier_init(&hold, NULL, N + 1);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_create(&t[i], &a, count_and_hold, NULL), 0);
    pthread_barrier_wait(&hold);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    struct vsp_tcounts c;
    vsp_tc_sum(&c);
    cr_assert_eq(c.frees, (unsigned long long)N * PER);
}

static void *count_down(void *arg)
{
    for (long i = 0; i < (long)(intptr_t)arg; i++)
        VSP_TC_ADD(live_count, -1);
    return NULL;
}

Test(tcount, a_count_taken_up_on_one_thread_and_down_on_another_sums_to_zero)
{
    for (int i = 0; i < 5000; i++)
        VSP_TC_ADD(live_count, 1);
    pthread_t t;
    pthread_create(&t, NULL, count_down, (void *)(intptr_t)5000);
    pthread_join(t, NULL);
    struct vsp_tcounts c;
    vsp_tc_sum(&c);
    cr_assert_eq(c.live_count, 0);
}

static volatile sig_atomic_t handled;
static void on_prof(int sig)
{
    (void)sig;
    VSP_TC_ADD(nested, 1);
    handled++;
}

Test(tcount, a_signal_handler_counting_on_the_same_thread_loses_nothing)
{
    struct sigaction sa = {.sa_handler = on_prof};
    sigaction(SIGPROF, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_PROF, &it, NULL);
    long n = 0;
    while (handled < 2000 && n < 400000000L) {
        VSP_TC_ADD(nested, 1);
        n++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    struct vsp_tcounts c;
    vsp_tc_sum(&c);
    cr_assert_gt(handled, 0, "the timer interrupted the loop");
    cr_assert_eq(c.nested, (unsigned long long)n + (unsigned long long)handled);
}

Test(tcount, a_child_after_fork_counts_from_zero)
{
    for (int i = 0; i < 10; i++)
        VSP_TC_ADD(failed, 1);
    pid_t pid = fork();
    if (pid == 0) {
        vsp_tc_reset();
        VSP_TC_ADD(failed, 1);
        pthread_t t;
        pthread_create(&t, NULL, count_some, NULL);
        pthread_join(t, NULL);
        struct vsp_tcounts c;
        vsp_tc_sum(&c);
        _exit(c.failed == 1 && c.allocations == PER ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's sums start again from zero");
    struct vsp_tcounts c;
    vsp_tc_sum(&c);
    cr_assert_eq(c.failed, 10, "the parent's are its own");
}
