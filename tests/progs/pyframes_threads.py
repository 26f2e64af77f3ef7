# Test program (issue 21): Python frames read by several threads at once with the GIL released
# (ctypes.CDLL), the shim's line cache and code table shared between them. Each of 4 threads runs
# worker_<k> -> step_<k> (a function of its own, compiled per thread), allocating and freeing
# 2,000 times from two lines, then keeps one allocation of (k+1) MiB. The trace must name each
# kept allocation's frames step_<k> (line 3) and worker_<k> (line 7) of thread<k>.py.
# usage: python3 pyframes_threads.py LIBCUDART
import ctypes
import sys
import threading

cudart = ctypes.CDLL(sys.argv[1])
SRC = """def step_{k}(size, keep):
    p = ctypes.c_void_p()
    cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size))
    if not keep: cudart.cudaFree(p)
def worker_{k}():
    for i in range(2000): step_{k}(4096 + (i % 7) * 512, False)
    step_{k}(({k} + 1) << 20, True)
"""
threads = []
for k in range(4):
    ns = {"cudart": cudart, "ctypes": ctypes}
    exec(compile(SRC.format(k=k), "thread%d.py" % k, "exec"), ns)
    threads.append(threading.Thread(target=ns["worker_%d" % k]))
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads done")
