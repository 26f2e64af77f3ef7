# Test program (issue 21): code objects freed and their memory reused. Each round compiles a
# function f<i> in a file gen<i>.py, calls cudaMalloc from it with a size of its own (4096*(i+1),
# kept) and drops it, so that its code object is freed and the next round's may land at the same
# address. The trace must name each allocation's frame f<i> in gen<i>.py, never an earlier one.
# With "cdll" the calls go through ctypes.CDLL, which releases the GIL: the shim then names code
# objects without holding a reference, so their addresses do come back (it prints how often).
# usage: python3 pyframes_reuse.py LIBCUDART [cdll]
import ctypes
import sys

cudart = (ctypes.CDLL if sys.argv[2:] == ["cdll"] else ctypes.PyDLL)(sys.argv[1])
seen, reused = set(), 0
for i in range(100):
    ns = {"cudart": cudart, "ctypes": ctypes}
    src = "def f%d(size):\n    p = ctypes.c_void_p()\n    cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size))\n" % i
    exec(compile(src, "gen%d.py" % i, "exec"), ns)
    code = ns["f%d" % i].__code__
    reused += id(code) in seen
    seen.add(id(code))
    del code
    ns["f%d" % i](4096 * (i + 1))
    del ns
print("rounds", i + 1)
print("addresses reused", reused, file=sys.stderr)
