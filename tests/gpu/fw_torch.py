# GPU suite (tests/gpu): PyTorch under vramspy. Modes:
#   basic - tensors, a matmul, four blocks kept to the end, pinned host memory, and a planted
#           out-of-memory (a 400 GiB tensor, caught); run with the default caching allocator, with
#           PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, and as each rank of a torchrun job
#   train - a small convolution + transformer model trained with varying batch shapes; the time per
#           step (after warm-up) goes to stderr as "step_ms X" for the suite to compare
#   nogpu - import and is_available only (run with CUDA_VISIBLE_DEVICES="")
# stdout carries only values that do not change from run to run.
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
    kept = [torch.ones(16 << 20, dtype=torch.uint8, device=device) for _ in range(4)]
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


{"basic": basic, "train": train}[mode]()
