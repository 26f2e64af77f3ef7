#!/usr/bin/env python3
"""make bench: start-up cost of a process that never touches CUDA, the subprocess harness (issue
22): `sh -c true` started RUNS times through Python's subprocess.run without a preload, with
LD_PRELOAD=SHIM and with LD_PRELOAD=EMPTY (an empty library: the cost of any preload),
interleaved (the order rotating from round to round), with the caller's whole environment (as a
test runner or launcher would pass it).
Prints the medians, the shim's cost (median less the plain one) and that cost over the empty
library's. tools/bench_startup.c is the same measure through posix_spawn.
Usage: bench_startup.py RUNS SHIM EMPTY"""
import os
import statistics
import subprocess
import sys
import time


def once(env):
    t = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", "true"], env=env, check=True)
    return (time.perf_counter() - t) * 1e6


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: bench_startup.py RUNS SHIM EMPTY")
    runs, shim, empty = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    envs = {"plain": base, "shim": dict(base, LD_PRELOAD=shim), "empty": dict(base, LD_PRELOAD=empty)}
    times = {k: [] for k in envs}
    order = list(envs)
    for i in range(runs):
        # the order rotates from round to round (a start's place in the round moves its time by a
        # few microseconds: tools/bench_startup.c)
        for k in order[i % 3:] + order[:i % 3]:
            times[k].append(once(envs[k]))
    m = {k: statistics.median(v) for k, v in times.items()}
    cost, ecost = m["shim"] - m["plain"], m["empty"] - m["plain"]
    print(f"subprocess_startup_plain_median_us {m['plain']:.1f}")
    print(f"subprocess_startup_shim_median_us {m['shim']:.1f}")
    print(f"subprocess_startup_empty_median_us {m['empty']:.1f}")
    print(f"subprocess_startup_cost_us {cost:.1f}")
    print(f"subprocess_startup_empty_cost_us {ecost:.1f}")
    print(f"subprocess_startup_cost_vs_empty {cost / ecost if ecost > 0 else 0:.2f}")


if __name__ == "__main__":
    main()
