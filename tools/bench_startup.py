#!/usr/bin/env python3
"""make bench: start-up cost of a process that never touches CUDA, the subprocess harness (issue
22): `sh -c true` started RUNS times through Python's subprocess.run without a preload, with
LD_PRELOAD=SHIM and with LD_PRELOAD=EMPTY (an empty library: the cost of any preload),
interleaved (the order rotating from round to round), with the caller's whole environment (as a
test runner or launcher would pass it).
Prints the medians, the shim's cost (median less the plain one) and that cost over the empty
library's, by wall time and by the child's CPU time (wait4). tools/bench_startup.c is the same measure through posix_spawn.
Usage: bench_startup.py RUNS SHIM EMPTY"""
import os
import statistics
import subprocess
import sys
import time


def once(env):
    """One start: its wall time and the child's CPU time (user + system, from wait4), in us."""
    t = time.perf_counter()
    p = subprocess.Popen(["/bin/sh", "-c", "true"], env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t) * 1e6
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"sh -c true exited {p.returncode}")
    return wall, (ru.ru_utime + ru.ru_stime) * 1e6


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: bench_startup.py RUNS SHIM EMPTY")
    runs, shim, empty = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    envs = {"plain": base, "shim": dict(base, LD_PRELOAD=shim), "empty": dict(base, LD_PRELOAD=empty)}
    times = {k: [] for k in envs}
    cpu = {k: [] for k in envs}
    order = list(envs)
    for i in range(runs):
        # the order rotates from round to round (a start's place in the round moves its time by a
        # few microseconds: tools/bench_startup.c)
        for k in order[i % 3:] + order[:i % 3]:
            w, c = once(envs[k])
            times[k].append(w)
            cpu[k].append(c)
    m = {k: statistics.median(v) for k, v in times.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    cost, ecost = m["shim"] - m["plain"], m["empty"] - m["plain"]
    print(f"subprocess_startup_plain_median_us {m['plain']:.1f}")
    print(f"subprocess_startup_shim_median_us {m['shim']:.1f}")
    print(f"subprocess_startup_empty_median_us {m['empty']:.1f}")
    print(f"subprocess_startup_cost_us {cost:.1f}")
    print(f"subprocess_startup_empty_cost_us {ecost:.1f}")
    print(f"subprocess_startup_cost_vs_empty {cost / ecost if ecost > 0 else 0:.2f}")
    ccost, cecost = mc["shim"] - mc["plain"], mc["empty"] - mc["plain"]
    print(f"subprocess_startup_cpu_medians_us plain {mc['plain']:.1f} empty {mc['empty']:.1f} "
          f"shim {mc['shim']:.1f}: cost vs empty {ccost / cecost if cecost > 0 else 0:.2f}")


if __name__ == "__main__":
    main()
