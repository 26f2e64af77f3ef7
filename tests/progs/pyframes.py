# Test program (issue 21): Python frames in recorded stacks. Calls cudaMalloc (the fake runtime)
# from nested functions, a method, a generator, an async def, a lambda, module level, a second
# thread, a thread created in C without a thread state, a 200-deep recursion and an atexit
# handler, each with a size of its own (and one pinned host allocation from pinned()), never freed (each is a leak the report shows with its
# stack). For each it writes what Python itself says its stack is at that moment (function,
# file, line, innermost first) into EXPECT (JSON: size -> frames), so that the test compares the
# trace against the interpreter's own view. Prints a line and exits with status 3, so a run with
# and without the shim can be compared.
# usage: python3 pyframes.py MODE LIBCUDART LIBPYTHREAD EXPECT   (MODE: ctypes | cdll | ext)
# ctypes: through ctypes.PyDLL, the GIL held during the call; cdll: through ctypes.CDLL, which
# releases the GIL around the call, as PyTorch's operators and every ctypes user do.
import atexit
import ctypes
import json
import sys
import threading

MODE, LIBCUDART, LIBTHREAD, EXPECT = sys.argv[1:5]
# PyDLL: the GIL stays held during the call, as in an extension module (ctypes.CDLL releases it)
cudart = (ctypes.CDLL if MODE == "cdll" else ctypes.PyDLL)(LIBCUDART)
cthread = ctypes.PyDLL(LIBTHREAD)
expect = {}


def qualname(code):
    return getattr(code, "co_qualname", code.co_name)


def frames_from(frame, first_line):
    out = []
    line = first_line
    while frame is not None:
        out.append({"function": qualname(frame.f_code), "file": frame.f_code.co_filename, "line": line})
        frame = frame.f_back
        line = frame.f_lineno if frame is not None else 0
    return out


def alloc(size):
    """One cudaMalloc of size bytes; the frames Python sees are noted first (the call is on the
    line after the note)."""
    expect[size] = frames_from(sys._getframe(0), sys._getframe(0).f_lineno + 2)
    p = ctypes.c_void_p()
    rc = cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size)) if MODE != "ext" else vspext.alloc(size)
    assert rc in (0, None) or isinstance(rc, int), rc
    return p


if MODE == "ext":
    import vspext  # noqa: E402  (built by the test next to the traces)


def inner(size):
    return alloc(size)


def outer(size):
    return inner(size)


class Model:
    def load_weights(self, size):
        return alloc(size)


def gen(size):
    yield alloc(size)


async def coro(size):
    return alloc(size)


def recurse(depth, size):
    if depth == 0:
        return alloc(size)
    return recurse(depth - 1, size)


outer(1 << 20)                               # nested functions
Model().load_weights(2 << 20)                # a method
for _ in gen(3 << 20):                       # a generator
    pass
c = coro(4 << 20)                            # async def, driven by hand
try:
    c.send(None)
except StopIteration:
    pass
(lambda s: alloc(s))(5 << 20)                # a lambda
alloc(6 << 20)                               # module level
t = threading.Thread(target=outer, args=(7 << 20,))   # a second thread
t.start()
t.join()
cthread.pythread_alloc(ctypes.c_size_t(8 << 20))      # a thread created in C: no thread state
expect[8 << 20] = []
recurse(200, 9 << 20)                        # 200 Python frames


def pinned(size):
    p = ctypes.c_void_p()
    cudart.cudaMallocHost(ctypes.byref(p), ctypes.c_size_t(size))  # host fallback: SVG and Perfetto marks


pinned(11 << 20)


def at_exit():
    alloc(10 << 20)
    with open(EXPECT, "w") as f:
        json.dump(expect, f)


atexit.register(at_exit)
print("pyframes done", MODE)
sys.exit(3)
