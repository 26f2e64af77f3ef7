# Test program: a Python host that loads a CUDA plugin library with ctypes.CDLL (RTLD_LOCAL, the
# default), calls FUNCTION(int codes[N]) and prints the result codes, so that a run with and
# without the shim can be compared (issue #10: local scopes). Exit status: the function's.
# usage: python3 ctypes_plugin.py LIBRARY FUNCTION N
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])
fn = getattr(lib, sys.argv[2])
codes = (ctypes.c_int * int(sys.argv[3]))()
rc = fn(codes)
print(sys.argv[2], rc, *codes)
sys.exit(rc)
