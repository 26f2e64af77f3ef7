# Test program (issue 21): code objects freed and their memory reused. Each round compiles a
# function f<i> (nested in o<i>) in a file gen<i>.py, calls cudaMalloc from it with a size of its own (4096*(i+1),
# kept) and drops it, so that its code object is freed and the next round's may land at the same
# address. The trace must name each allocation's frame f<i> in gen<i>.py, never an earlier one.
# With "cdll" the calls go through ctypes.CDLL, which releases the GIL: the shim then names code
# objects without holding a reference, so their addresses do come back (it prints how often).
# usage: python3 pyframes_reuse.py LIBCUDART [cdll]
import ctypes
import gc
import sys

cudart = (ctypes.CDLL if sys.argv[2:] == ["cdll"] else ctypes.PyDLL)(sys.argv[1])
seen, reused = set(), 0
for i in range(100):
    ns = {"cudart": cudart, "ctypes": ctypes}
    # nested: the inner code object, its name and its line table die together (gc.collect), and
    # pymalloc hands their blocks back in order, so the next round's may take every address
    src = ("def o%d():\n    def f%d(size):\n        p = ctypes.c_void_p()\n"
           "        cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size))\n    return f%d\n") % (i, i, i)
    exec(compile(src, "gen%d.py" % i, "exec"), ns)
    fn = ns["o%d" % i]()
    reused += id(fn.__code__) in seen
    seen.add(id(fn.__code__))
    fn(4096 * (i + 1))
    del ns, fn
    gc.collect()
print("rounds", i + 1)
print("addresses reused", reused, file=sys.stderr)
