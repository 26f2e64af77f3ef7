/* Unit tests of the event clock (shim/base/clock.c): its readings follow CLOCK_MONOTONIC, within a
 * few microseconds, across many of its windows and on several threads, and never go backwards. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <time.h>

#include "shim/base/clock.h"

static uint64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define TOL_NS 20000ull /* 20 us: interpolation error is far below; this is for the machine's noise */

/* Readings for about 60 ms (past the calibration, 1 ms or more; some 40 windows): each between a real
 * reading taken before it and one taken after, give or take TOL_NS, and none below the last. */
static void *follow(void *arg)
{
    unsigned long *bad = arg;
    uint64_t last = 0, end = mono() + 60000000ull;
    for (uint64_t n = 0;; n++) {
        uint64_t before = mono(), t = vsp_clock_ns(), after = mono();
        if (t + TOL_NS < before || t > after + TOL_NS || t < last)
            bad[0]++;
        last = t;
        if ((n & 1023) == 0) {
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL); /* windows that end while the thread sleeps */
        }
        if (after > end)
            break;
        bad[1]++;
    }
    return NULL;
}

Test(clock, readings_follow_clock_monotonic_and_never_go_back)
{
    unsigned long r[2] = {0, 0};
    follow(r);
    cr_assert_gt(r[1], 1000, "the loop ran");
    cr_assert_eq(r[0], 0, "%lu of %lu readings off the real clock or backwards", r[0], r[1]);
}

Test(clock, threads_each_follow_the_real_clock)
{
    enum { N = 3 };
    pthread_t t[N];
    unsigned long r[N][2] = {{0}};
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, follow, r[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(r[i][0], 0, "thread %d: %lu of %lu readings off or backwards", i, r[i][0], r[i][1]);
    }
}
