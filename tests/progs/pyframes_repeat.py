# Test program (issue 22): one call chain allocating again and again, its frames at the same
# addresses each time but running other functions from other lines, as a framework's training loop
# does. The shim remembers each capture buffer's last Python frames (level by level: code object
# and instruction) and the stack id they gave; every allocation must still get its own frames.
# Round i allocates 4096*(i+1) bytes (kept) through caller(i): via a() when i % 3 == 0, via b()
# when 1, from caller itself when 2, each group from the same lines. EXPECT (JSON): per group,
# the interpreter's own view of its frames (function, file, line, innermost first) and the group's
# bytes. Then 20 rounds call, from one Python line, either of two C functions of LIBPYTHREAD that
# call cudaMalloc (pythread_alloc_here, pythread_alloc_other): the same Python frames on two native
# paths are two stacks (EXPECT's "native": the bytes through each). Then the process allocates
# 4096000 bytes in edge() and forks, and the child allocates as much from the same frames and lines
# first thing, then does the same rounds (its own trace must name its frames and stacks again: the
# child's trace shares no names with the parent's), and writes EXPECT.child.
# usage: python3 pyframes_repeat.py LIBCUDART pydll|cdll EXPECT LIBPYTHREAD
import ctypes
import json
import os
import sys

cudart = (ctypes.CDLL if sys.argv[2] == "cdll" else ctypes.PyDLL)(sys.argv[1])
EXPECT = sys.argv[3]
cthread = (ctypes.CDLL if sys.argv[2] == "cdll" else ctypes.PyDLL)(sys.argv[4])
groups = {}
native = {}


def frames_from(frame, first_line):
    out = []
    line = first_line
    while frame is not None:
        out.append({"function": getattr(frame.f_code, "co_qualname", frame.f_code.co_name),
                    "file": frame.f_code.co_filename, "line": line})
        frame = frame.f_back
        line = frame.f_lineno if frame is not None else 0
    return out


def leaf(group, size):
    g = groups.setdefault(group, {"bytes": 0})
    g["bytes"] += size
    g["frames"] = frames_from(sys._getframe(0), sys._getframe(0).f_lineno + 2)
    p = ctypes.c_void_p()
    cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size))


def a(size):
    leaf("a", size)


def b(size):
    leaf("b", size)


def caller(i, size):
    if i % 3 == 0:
        a(size)
    elif i % 3 == 1:
        b(size)
    else:
        leaf("direct", size)


def through_c(fn, size):
    fn(ctypes.c_size_t(size))


def rounds(path):
    groups.clear()
    native.clear()
    for i in range(60):
        caller(i, 4096 * (i + 1))
    for i in range(20):
        fn = cthread.pythread_alloc_here if i % 2 else cthread.pythread_alloc_other
        size = 4096 * (100 + i)
        native[fn.__name__] = native.get(fn.__name__, 0) + size
        through_c(fn, size)
    with open(path, "w") as f:
        json.dump({"groups": groups, "native": native}, f)


def edge(size):
    p = ctypes.c_void_p()
    cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(size))


def fork_after(size):
    """The parent's last allocation before the fork and the child's first after it: one stack,
    the same frames at the same lines (a capture buffer that kept the parent's must not give the
    child the parent's stack id or code ids: the child's trace has neither)."""
    for child in (False, True):
        if child:
            pid = os.fork()
            if pid:
                return pid
        edge(size)
    return 0


rounds(EXPECT)
pid = fork_after(4096 * 1000)
if pid == 0:
    rounds(EXPECT + ".child")
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("repeat done", os.waitstatus_to_exitcode(status))
