/* Event timestamps: CLOCK_MONOTONIC nanoseconds, as clock_gettime gives them, at a third of its
 * cost where the CPU's time-stamp counter is invariant (issue 22: the vDSO's clock_gettime takes
 * 25 ns on this machine kind's kvm-clock, twice per allocation+free pair). Each thread reads the
 * real clock once per window of 2^22 TSC ticks (about 1.5 ms) and interpolates inside it with a
 * process-wide rate measured against the real clock over the process's life (re-measured as it
 * runs; until 1 ms has passed, or longer where the clock's readings pair loosely with the counter,
 * every read is a real one). A thread's readings never go backwards; one is within the window's
 * length times the rate's error of the real clock (well under a microsecond), and the real clock is
 * read again at each window, so no error accumulates.
 * Without an invariant TSC (CPUID 0x80000007 EDX bit 8), or off x86-64, it is clock_gettime.
 * Must never: lock, allocate, or make a system call (clock_gettime is the vDSO's). */
#ifndef VSP_CLOCK_H
#define VSP_CLOCK_H

#include <stdint.h>

uint64_t vsp_clock_ns(void);

/* VRAMSPY_CLOCK=coarse (set once, at init, before any event): vsp_clock_ns reads
 * CLOCK_MONOTONIC_COARSE instead, the time of the kernel's last tick (1 to 10 ms apart; 4 ms on
 * this machine kind), for a few nanoseconds instead of a counter read (issue 22: the TSC read was
 * the largest single cost of a pair on Intel). Still monotonic across threads; heaptrack, for
 * comparison, stamps its events with a timer thread's 10 ms clock. */
void vsp_clock_set_coarse(int on);
int vsp_clock_coarse(void);

#endif
