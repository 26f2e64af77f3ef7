# GPU suite (tests/gpu): CuPy under vramspy: arrays from its memory pool, pinned host memory, a
# planted out-of-memory (400 GiB, caught), the pool emptied at the end. stdout: run-independent values.
import cupy as cp

a = cp.zeros(128 << 20, dtype=cp.uint8)
x = cp.arange(1 << 20, dtype=cp.int64)
print("sum:", int(x.sum()))
pinned = cp.cuda.alloc_pinned_memory(4 << 20)
print("pinned:", pinned.ptr != 0)
try:
    cp.empty(400 << 30, dtype=cp.uint8)
    print("400 GiB: allocated")
except cp.cuda.memory.OutOfMemoryError:
    print("400 GiB: out of memory")
del a
cp.get_default_memory_pool().free_all_blocks()
print("pool after free_all_blocks:", cp.get_default_memory_pool().total_bytes() >= 0)
