# GPU suite (tests/gpu): PyTorch under vramspy. Modes:
#   basic - tensors, a matmul, four blocks kept to the end, pinned host memory, and a planted
#           out-of-memory (a 400 GiB tensor, caught); run with the default caching allocator, with
#           PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, and as each rank of a torchrun job
#   train - a small convolution + transformer model trained with varying batch shapes; the time per
#           step (after warm-up) goes to stderr as "step_ms X" for the suite to compare
#   nogpu - import and is_available only (run with CUDA_VISIBLE_DEVICES="")
#   raw   - some PyTorch work, then one raw cudaMalloc of 24 MiB through ctypes (the libcudart
#           PyTorch loaded, else the CUDA toolkit's) whose pointer is dropped: the process's one leak
#           (issue 19); prints "skip: ..." when there is no libcudart to call
#   grow  - a paced training loop (GROW_STEPS steps of a small MLP, 25 ms each, so that the loop
#           is most of the trace's time) that appends a 4 MiB tensor to a global list every step:
#           a `growth` finding (issue 19)
#   steady - the same loop without the append: no `growth` finding
# Lines marked "# gpu-check: NAME" are the ones tests/gpu/check.py expects a finding's Python frame
# to name (issue 21): keep each such statement on one line, in a module-level function.
# stdout carries only values that do not change from run to run.
import ctypes
import ctypes.util
import glob
import os
import sys
import time

import torch

mode = sys.argv[1] if len(sys.argv) > 1 else "basic"
if mode == "nogpu" or not torch.cuda.is_available():
    print("cuda available:", torch.cuda.is_available())
    sys.exit(0)

local_rank = int(os.environ.get("LOCAL_RANK", "0"))
device = torch.device("cuda", local_rank % torch.cuda.device_count())
torch.cuda.set_device(device)
torch.manual_seed(1234)


def basic():
    big = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    x = torch.randn(2048, 2048, device=device)
    y = x @ x.T
    kept = []
    for _ in range(4):
        kept.append(torch.ones(16 << 20, dtype=torch.uint8, device=device))  # gpu-check: kept
    torch.cuda.synchronize()
    print("trace of x x^T > 0:", bool(torch.trace(y).item() > 0))
    print("kept bytes:", sum(t.numel() for t in kept))
    del big
    try:
        torch.empty(400 << 30, dtype=torch.uint8, device=device)
        print("400 GiB: allocated")
    except torch.OutOfMemoryError:
        print("400 GiB: out of memory")
    host = torch.zeros(4 << 20, dtype=torch.uint8).pin_memory()
    print("pinned:", host.is_pinned())


def train():
    import torch.nn as nn

    features = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.GELU(), nn.Conv2d(32, 64, 3, padding=1), nn.GELU(),
        nn.AdaptiveAvgPool2d(8), nn.Flatten(), nn.Linear(64 * 8 * 8, 256)).to(device)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True), 3).to(device)
    params = list(features.parameters()) + list(encoder.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step(batch):
        img = torch.randn(batch, 3, 48, 48, device=device)
        tokens = features(img).view(batch // 8, 8, 256)
        loss = encoder(tokens).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step(64)
    torch.cuda.synchronize()
    steps = 60
    t0 = time.perf_counter()
    for i in range(steps):
        step(32 + 16 * (i % 5))  # shapes vary: the allocator sees new sizes
    torch.cuda.synchronize()
    print("step_ms %.3f" % ((time.perf_counter() - t0) * 1000 / steps), file=sys.stderr)
    print("trained", steps, "steps")


RAW_BYTES = 24 << 20


def loaded_cudart():
    """The libcudart this process loaded (PyTorch's), else the CUDA toolkit's, else None."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split(None, 5)[5].strip() if len(line.split(None, 5)) == 6 else ""
            if os.path.basename(path).startswith("libcudart.so"):
                return path
    found = ctypes.util.find_library("cudart")
    if found:
        return found
    toolkit = sorted(glob.glob("/usr/local/cuda/lib64/libcudart.so*"))
    return toolkit[0] if toolkit else None


def open_cudart():
    """The runtime, through ctypes as a Python user would call it, or None."""
    path = loaded_cudart()
    if not path:
        return None
    rt = ctypes.CDLL(path)
    rt.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
    rt.cudaMalloc.restype = ctypes.c_int
    return rt


def raw_leak(rt):
    p = ctypes.c_void_p()
    rc = rt.cudaMalloc(ctypes.byref(p), RAW_BYTES)  # gpu-check: raw
    ok = rc == 0 and p.value is not None
    del p  # the pointer is dropped: nothing can free it any more
    return ok


def raw():
    x = torch.randn(1024, 1024, device=device)
    kept = torch.ones(16 << 20, dtype=torch.uint8, device=device)
    print("matmul finite:", bool(torch.isfinite(x @ x).all().item()), kept.numel())
    rt = open_cudart()
    if rt is None:
        print("skip: no libcudart.so in the process, on the library path or in /usr/local/cuda/lib64")
        return
    print("raw cudaMalloc of 24 MiB:", raw_leak(rt))
    torch.cuda.synchronize()


# vramspy-report reads each site's high-water mark at 50, 60, ..., 100% of the trace's time (first
# CUDA call to exit) and wants a new high at 4 of those 6: the paced loop (160 x 25 ms, at least 4 s)
# must outlast the model's set-up and the interpreter's exit several times over; 4 MiB a step puts a
# new 20 MiB caching-allocator segment every 5 steps, 640 MiB in all
GROW_STEPS, GROW_BYTES, STEP_PAUSE_S = 160, 4 << 20, 0.025
grown = []  # the global list the grow mode appends to


def grow_step(model, opt, x, append):
    loss = model(x).square().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if append:
        grown.append(torch.ones(GROW_BYTES, dtype=torch.uint8, device=device))  # gpu-check: grow
    torch.cuda.synchronize()
    time.sleep(STEP_PAUSE_S)  # paced: the loop, not start-up or exit, is most of the trace's time


def grow_loop(append):
    import torch.nn as nn

    # every tensor of the step is at most 1 MiB (the caching allocator's small pool), so the 4 MiB
    # appended each step is the only request that takes new large segments once warm
    model = nn.Sequential(nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 512)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(128, 512, device=device)
    for _ in range(3):
        grow_step(model, opt, x, False)
    for _ in range(GROW_STEPS):
        grow_step(model, opt, x, append)
    print("steps:", GROW_STEPS, "kept tensors:", len(grown))


def grow():
    grow_loop(True)


def steady():
    grow_loop(False)


{"basic": basic, "train": train, "raw": raw, "grow": grow, "steady": steady}[mode]()
