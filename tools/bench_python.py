# make bench (issue 21): the cost of Python frames per allocation. At a Python depth of DEPTH
# frames, N cudaMalloc/cudaFree pairs through ctypes.PyDLL (the GIL held, as an extension module's
# allocator holds it) against the test-double runtime; prints "ns_per_pair X". Run plain, under the
# shim with VRAMSPY_PYTHON=0 and with it on: the difference of the last two is what the Python
# frames add to each allocation (frees record no stack).
# With a fourth argument "cdll": through ctypes.CDLL, which releases the GIL around each call (as
# PyTorch's operators do): the frames are then read without the GIL (3.11+).
# usage: python3 bench_python.py LIBCUDART DEPTH N [cdll]
import ctypes
import sys
import time

cudart = (ctypes.CDLL if sys.argv[4:] == ["cdll"] else ctypes.PyDLL)(sys.argv[1])
depth, n = int(sys.argv[2]), int(sys.argv[3])
malloc, free = cudart.cudaMalloc, cudart.cudaFree


def loop(count):
    p = ctypes.c_void_p()
    ref, size = ctypes.byref(p), ctypes.c_size_t(4096)
    t0 = time.perf_counter_ns()
    for _ in range(count):
        malloc(ref, size)
        free(p)
    return time.perf_counter_ns() - t0


def nest(d, count):
    return nest(d - 1, count) if d > 2 else loop(count)  # this frame, loop and <module>: depth frames


nest(depth, 1000)  # warm: the first stack's walk, the code names, the shim's start
print("ns_per_pair %.1f" % (nest(depth, n) / n))
