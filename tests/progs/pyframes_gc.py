# Test program (issue 21): objects whose finaliser frees device memory, kept alive only by a
# reference cycle, so that only the garbage collector frees them, with a collection due at every
# allocation of a tracked object (gc.set_threshold(1)). Reading the Python frames of an allocation
# creates frame objects (3.11+); had a collection run there, the finalisers' cudaFree would run
# inside the shim's cudaMalloc hook, unrecorded (and, under a framework's allocator lock, deadlock).
# Prints how many finalisers freed memory; every one of those frees must be in the trace.
# usage: python3 pyframes_gc.py LIBCUDART
import ctypes
import gc
import sys

cudart = ctypes.PyDLL(sys.argv[1])
freed = 0


class Holder:
    def __init__(self):
        self.p = ctypes.c_void_p()
        cudart.cudaMalloc(ctypes.byref(self.p), ctypes.c_size_t(4096))
        self.me = self  # a cycle: only the collector frees it

    def __del__(self):
        global freed
        cudart.cudaFree(self.p)
        freed += 1


def deep(n):
    if n:
        return deep(n - 1)
    return Holder()


gc.set_threshold(1)
for i in range(300):
    deep(8)
gc.collect()
print("freed", freed)
