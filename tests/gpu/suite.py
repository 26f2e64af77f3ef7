# GPU suite (tests/gpu, `make test-gpu`): runs vramspy on the machine's real GPU and checks what it
# promises (tests/gpu/check.py), in one command and a few minutes. Where there is no GPU it says why
# and exits 0. Subcommands:
#   detect                              say why there is no usable GPU (exit 3), or exit 0
#   run [--tools DIR] [--results DIR]   detect the GPU, run every case, check, print the table
#   analyse RESULTS [--tools DIR]       check a results directory left by `run` on a machine whose
#                                       vramspy-report could not run (no libdw/libjansson there)
# Exit: 0 every promise kept (or no GPU: skipped), 1 a promise broken, 2 usage or setup error,
# 4 cases ran but nothing could be checked here (see README.md: analyse the results elsewhere).
# It never edits the GPU's settings and never reports a figure it did not measure.
import argparse
import fnmatch
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import check  # noqa: E402

BUDGET_S = float(os.environ.get("VRAMSPY_GPU_BUDGET_S", "280"))  # stay under 5 minutes in all
# VRAMSPY_GPU_CASES=torch_*,cupy: only the cases whose names match one of these globs (the others
# are SKIP rows saying so), for a short re-check on a machine lent by the minute.
CASES = [c for c in os.environ.get("VRAMSPY_GPU_CASES", "").split(",") if c.strip()]


def wanted(name):
    return not CASES or any(fnmatch.fnmatchcase(name, c.strip()) for c in CASES)


NOT_SELECTED = "not selected (VRAMSPY_GPU_CASES=%s)" % ",".join(CASES)
T0 = time.monotonic()


def say(*a):
    print(*a, flush=True)


def elapsed():
    return time.monotonic() - T0


# ---- is there a GPU? ----

PROBE = r"""
import ctypes, sys
try:
    cu = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    print("no libcuda.so.1 (%s)" % e); sys.exit(1)
rc = cu.cuInit(0)
if rc != 0:
    print("cuInit failed with %d" % rc); sys.exit(1)
n = ctypes.c_int(0)
rc = cu.cuDeviceGetCount(ctypes.byref(n))
if rc != 0 or n.value == 0:
    print("cuDeviceGetCount: %d device(s), result %d" % (n.value, rc)); sys.exit(1)
print("%d device(s)" % n.value)
"""


def gpu_absent_reason():
    """None when a GPU is usable here, else why not (one line)."""
    if not shutil.which("nvidia-smi"):
        return "no nvidia-smi on PATH (no NVIDIA driver on this machine)"
    p = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    if p.returncode != 0 or "GPU" not in p.stdout:
        return "nvidia-smi lists no GPU (%s)" % (p.stderr.strip() or p.stdout.strip() or "exit %d" % p.returncode)[:200]
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None and not os.environ["CUDA_VISIBLE_DEVICES"].strip():
        return 'CUDA_VISIBLE_DEVICES="" hides every device'
    # the device count as the CUDA driver gives it, in a process of its own
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return "the CUDA driver gives no device: " + (p.stdout.strip() or p.stderr.strip())[:200]
    return None


def machine():
    """The device and the versions, as the tools print them."""
    def out(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            return p.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    m = {"gpu": out(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]),
         "nvcc": (re.findall(r"release [^\n]*", out([nvcc(), "--version"])) or [""])[0] if nvcc() else "",
         "glibc": out(["ldd", "--version"]).splitlines()[0] if out(["ldd", "--version"]) else "",
         "python": sys.version.split()[0]}
    for mod in ("torch", "cupy", "jax"):
        m[mod] = None
        if importlib.util.find_spec(mod):
            m[mod] = out([sys.executable, "-c", "import %s; print(%s.__version__)" % (mod, mod)]).splitlines()[-1:] or ["?"]
            m[mod] = m[mod][0] if m[mod] else "?"
    return m


def nvcc():
    for c in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if c and os.path.exists(c):
            return c
    return None


# ---- the tools under test ----

class Tools:
    """The shim and the report: from a bundle (make gpu-bundle: libraries beside them) or build/."""

    def __init__(self, d):
        self.dir = os.path.abspath(d)
        self.shim = os.path.join(self.dir, "libvramspy.so")
        self.report = os.path.join(self.dir, "vramspy-report")
        self.front = os.path.join(self.dir, "vramspy")
        self.bin = os.path.join(self.dir, "gpu-bin")
        self.env = dict(os.environ)  # the bundle's binaries find lib/ through their RPATH ($ORIGIN/lib)
        self.report_ok = self._runs(self.report)
        self.front_ok = self._runs(self.front)

    def _runs(self, exe):
        if not os.path.exists(exe):
            return False
        p = subprocess.run([exe, "--check-options"] if exe == self.report else [exe, "--help"],
                           capture_output=True, text=True, env=self.env)
        return p.returncode == 0 and "error while loading shared libraries" not in p.stderr


def build_programs(tools, out):
    """The nvcc programs: carried in the bundle when they run here, else built now."""
    progs = {"alloc_static": ["-o"], "alloc_shared": ["-cudart", "shared", "-o"], "bench_async": ["-o"]}
    have = {}
    for name in progs:
        pre = os.path.join(tools.bin, name)
        if os.path.exists(pre):
            p = subprocess.run(["ldd", pre], capture_output=True, text=True)
            if "not found" not in p.stdout:
                have[name] = pre
    if len(have) == len(progs):
        return have, None
    if not nvcc():
        return have, "no nvcc and no runnable programs in %s" % tools.bin
    os.makedirs(out, exist_ok=True)
    for name, flags in progs.items():
        if name in have:
            continue
        src = os.path.join(HERE, "bench_async.cu" if name == "bench_async" else "alloc_families.cu")
        dst = os.path.join(out, name)
        p = subprocess.run([nvcc(), "-O2", "-g"] + flags + [dst, src, "-lcuda"], capture_output=True, text=True)
        if p.returncode != 0:
            return have, "nvcc %s failed: %s" % (name, p.stderr.strip()[-300:])
        have[name] = dst
    return have, None


# ---- running cases ----

class Runner:
    def __init__(self, tools, results):
        self.t, self.dir = tools, results
        self.traces = os.path.join(results, "traces")
        os.makedirs(self.traces, exist_ok=True)
        self.cases = []

    def run(self, argv, env_extra=None, shim=False, trace=None, timeout=180, out_name=None, preload=True):
        env = dict(os.environ)
        env.update(env_extra or {})
        if shim:
            if preload:
                env["LD_PRELOAD"] = self.t.shim
            env["VRAMSPY_OUT"] = os.path.join(self.traces, trace or "scratch.%p.trace")
        t = time.monotonic()
        try:
            p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
            status, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            status, out, err = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), "timed out after %ds" % timeout
        if out_name:
            with open(os.path.join(self.dir, out_name + ".out"), "w") as f:
                f.write(out)
            with open(os.path.join(self.dir, out_name + ".err"), "w") as f:
                f.write(err)
        return {"status": status, "stdout": out, "stderr": err, "seconds": round(time.monotonic() - t, 2)}

    def pair(self, name, kind, argv, env_extra=None, timeout=180, **kw):
        """Without and with the shim: stdout and exit status compared, the trace kept."""
        if not wanted(name):
            self.skip(name, kind, NOT_SELECTED)
            return {"name": name, "skip": NOT_SELECTED}, None, None
        plain = self.run(argv, env_extra, timeout=timeout, out_name=name + ".plain")
        shim = self.run(argv, env_extra, shim=True, trace=name + ".%p.trace", timeout=timeout, out_name=name + ".shim")
        case = {"name": name, "kind": kind, "argv": argv, "env": env_extra or {},
                "plain": {"status": plain["status"], "seconds": plain["seconds"]},
                "shim": {"status": shim["status"], "seconds": shim["seconds"]},
                "stdout_same": plain["stdout"] == shim["stdout"],
                "traces": sorted(os.path.basename(t) for t in glob.glob(os.path.join(self.traces, name + ".*.trace")))}
        if not case["stdout_same"]:
            a, b = plain["stdout"].splitlines(), shim["stdout"].splitlines()
            case["diff"] = "; ".join("%r -> %r" % d for d in zip(a, b) if d[0] != d[1])[:300] or \
                "%d lines plain, %d with the shim" % (len(a), len(b))
        case.update(kw)
        say("  %-22s status %s/%s, stdout %s, %.1fs/%.1fs" % (name, plain["status"], shim["status"],
            "same" if case["stdout_same"] else "DIFFERENT", plain["seconds"], shim["seconds"]))
        if kind != "nogpu" and plain["stdout"].startswith("cuda available: False"):  # fw_torch.py saw no GPU
            case = {"name": name, "kind": kind, "skip": "PyTorch sees no GPU (a CPU-only build?)"}
        why = re.search(r"^skip: (.*)$", plain["stdout"], re.M)  # a case script that cannot run its case here
        if why and plain["status"] == 0:
            case = {"name": name, "kind": kind, "skip": why.group(1)}
        self.cases.append(case)
        return case, plain, shim

    def skip(self, name, kind, why):
        say("  %-22s SKIP: %s" % (name, why))
        self.cases.append({"name": name, "kind": kind, "skip": why})

    def timed(self, name, kind, argv, env_extra, rounds, parse, what, unit, short, limit, timeout=180, **kw):
        """Interleaved rounds without and with the shim; the first shim round's trace kept."""
        if not wanted(name):
            self.skip(name, kind, NOT_SELECTED)
            return None
        plain, shim, first = [], [], None
        for i in range(rounds):
            a = self.run(argv, env_extra, timeout=timeout, out_name="%s.plain%d" % (name, i))
            b = self.run(argv, env_extra, shim=True, trace=(name + ".%p.trace") if i == 0 else "scratch.%p.trace",
                         timeout=timeout, out_name="%s.shim%d" % (name, i))
            first = first or (a, b)
            for res, into in ((a, plain), (b, shim)):
                v = parse(res)
                if v is not None:
                    into.append(v)
        for t in glob.glob(os.path.join(self.traces, "scratch.*.trace")):
            os.unlink(t)
        a, b = first
        case = {"name": name, "kind": kind, "argv": argv, "env": env_extra or {},
                "plain": {"status": a["status"]}, "shim": {"status": b["status"]},
                "stdout_same": a["stdout"] == b["stdout"],
                "traces": sorted(os.path.basename(t) for t in glob.glob(os.path.join(self.traces, name + ".*.trace"))),
                "timing": {"plain": plain, "shim": shim, "what": what, "unit": unit, "short": short, "limit_pct": limit}}
        case.update(kw)
        say("  %-22s status %s/%s, %s plain %s, shim %s" % (name, a["status"], b["status"], what, plain, shim))
        self.cases.append(case)
        return case


def step_ms(res):
    m = re.search(r"step_ms ([0-9.]+)", res["stderr"])
    return float(m.group(1)) if m else None


def have_module(mod):
    return importlib.util.find_spec(mod) is not None


def run_cases(r, progs, prog_err):
    py = sys.executable
    # -- nvcc programs: every allocation family, both runtimes, no device, enforce, gating
    if prog_err and not progs:
        for n in ("alloc_static", "alloc_shared"):
            r.skip(n, "alloc", prog_err)
    for n in ("alloc_static", "alloc_shared"):
        if n not in progs:
            continue
        case, plain, _ = r.pair(n, "alloc", [progs[n]], timeout=120)
        if plain is not None:  # the host pool is planted where the device has one
            case["host_pool"] = re.search(r"host pool 8MiB +ok", plain["stdout"]) is not None
        r.pair(n + "_nogpu", "nogpu", [progs[n]], {"CUDA_VISIBLE_DEVICES": ""}, timeout=120)
        if plain is None or not wanted("enforce_" + n[6:]):
            r.skip("enforce_" + n[6:], "enforce", NOT_SELECTED)
            continue
        plain_e = plain
        enf = r.run([progs[n]], {"VRAMSPY_ENFORCE": "vram-only"}, shim=True, trace="enforce_%s.%%p.trace" % n[6:],
                    timeout=120, out_name="enforce_" + n[6:])
        r.cases.append({"name": "enforce_" + n[6:], "kind": "enforce", "host_pool": case["host_pool"],
                        "plain": {"status": plain_e["status"]}, "shim": {"status": enf["status"]},
                        "traces": sorted(os.path.basename(t) for t in glob.glob(os.path.join(r.traces, "enforce_%s.*.trace" % n[6:])))})
        say("  %-22s status %s (plain %s)" % ("enforce_" + n[6:], enf["status"], plain_e["status"]))
    if "alloc_static" in progs and not wanted("vramspy_run_gate"):
        r.skip("vramspy_run_gate", "gate", NOT_SELECTED)
    elif "alloc_static" in progs:
        if r.t.front_ok:
            gates = []
            for want, flags in ((1, "leak,host-fallback"), (1, "oom"), (0, "crash,invalid-free")):
                g = r.run([r.t.front, "run", "--out", os.path.join(r.traces, "gate-" + flags.replace(",", "-")),
                           "--fail-on", flags, "--", progs["alloc_static"]], timeout=120)
                gates.append((want, g["status"], "--fail-on " + flags))
            r.cases.append({"name": "vramspy_run_gate", "kind": "gate", "gates": gates})
            say("  %-22s %s" % ("vramspy_run_gate", ", ".join("%s -> %s" % (g[2], g[1]) for g in gates)))
        else:
            r.skip("vramspy_run_gate", "gate", "the front-end cannot run here (libdw/libjansson): carry make gpu-bundle")
    if "alloc_shared" in progs and not wanted("compute_sanitizer"):
        r.skip("compute_sanitizer", "sanitizer", NOT_SELECTED)
    elif "alloc_shared" in progs:
        cs = shutil.which("compute-sanitizer") or ("/usr/local/cuda/bin/compute-sanitizer"
                                                  if os.path.exists("/usr/local/cuda/bin/compute-sanitizer") else None)
        if cs:
            s = r.run([cs, "--leak-check", "full", progs["alloc_shared"]], timeout=180, out_name="sanitizer")
            r.cases.append({"name": "compute_sanitizer", "kind": "sanitizer", "text_file": "sanitizer.out"})
            say("  %-22s status %s" % ("compute_sanitizer", s["status"]))
        else:
            r.skip("compute_sanitizer", "sanitizer", "no compute-sanitizer")
    if "bench_async" in progs:
        def ns(res):
            try:
                return float(res["stdout"].strip())
            except ValueError:
                return None
        r.timed("async_pairs_depth30", "bench", [progs["bench_async"], "30", "50000"], None, 3, ns,
                "ns per cudaMallocAsync+cudaFreeAsync pair", "ns", "per pair", check.ASYNC_PAIR_MAX_PCT)
    # -- frameworks: whatever python3 has
    torch_py = os.path.join(HERE, "fw_torch.py")
    if not have_module("torch"):
        for n in ("torch_basic", "torch_expandable", "torch_nogpu", "torch_raw_leak", "torch_grow", "torch_steady",
                  "torch_train", "torch_async_train", "torchrun_2ranks"):
            r.skip(n, "framework", "python3 has no torch")
    else:
        big, pinned = 400 * check.GIB, 4 * check.MIB

        def frames(kinds, marker=None):  # issue 21: the Python frames the findings of `kinds` must carry
            return {"script": "fw_torch.py", "kinds": kinds, "marker": marker}
        r.pair("torch_basic", "framework", [py, torch_py, "basic"], oom_bytes=big, pinned_bytes=pinned,
               py_frames=frames(["cached"], "kept"))
        r.pair("torch_expandable", "framework", [py, torch_py, "basic"],
               {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}, oom_bytes=big, pinned_bytes=pinned, chunked=True,
               py_frames=frames(["cached"], "kept"))
        r.pair("torch_nogpu", "nogpu", [py, torch_py, "nogpu"], {"CUDA_VISIBLE_DEVICES": ""})
        # issue 19 on a GPU: the one leak of a PyTorch process; growth, and none without the append
        r.pair("torch_raw_leak", "framework", [py, torch_py, "raw"], raw_leak_bytes=24 * check.MIB,
               py_frames=frames(["leak"], "raw"))
        r.pair("torch_grow", "framework", [py, torch_py, "grow"], growth=True,
               py_frames=frames(["growth"], "grow"))
        r.pair("torch_steady", "framework", [py, torch_py, "steady"], growth=False)
        r.timed("torch_train", "train", [py, torch_py, "train"], None, 2, step_ms, "ms per training step", "ms",
                "per step", check.STEP_MAX_PCT, py_frames=frames(["cached"]))
        r.timed("torch_async_train", "train", [py, torch_py, "train"], {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"},
                2, step_ms, "ms per training step", "ms", "per step", check.STEP_MAX_PCT, pool=True,
                py_frames=frames(["cached"]))
        if not wanted("torchrun_2ranks"):
            r.skip("torchrun_2ranks", "job", NOT_SELECTED)
        elif elapsed() < BUDGET_S - 40:
            job = [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", torch_py, "basic"]
            plain = r.run(job, timeout=150, out_name="torchrun.plain")
            shim = r.run(job, shim=True, trace="job.%p.trace", timeout=150, out_name="torchrun.shim")
            r.cases.append({"name": "torchrun_2ranks", "kind": "job", "ranks": 2,
                            "plain": {"status": plain["status"]}, "shim": {"status": shim["status"]},
                            "traces": sorted(os.path.basename(t) for t in glob.glob(os.path.join(r.traces, "job.*.trace")))})
            say("  %-22s status %s/%s" % ("torchrun_2ranks", plain["status"], shim["status"]))
        else:
            r.skip("torchrun_2ranks", "job", "time budget (VRAMSPY_GPU_BUDGET_S=%d) spent" % BUDGET_S)
    if not have_module("cupy"):
        r.skip("cupy", "framework", "python3 has no cupy")
    else:
        r.pair("cupy", "framework", [py, os.path.join(HERE, "fw_cupy.py")], oom_bytes=400 * check.GIB,
               pinned_bytes=4 * check.MIB)
    if not have_module("jax"):
        for n in ("jax_basic", "jax_platform_train"):
            r.skip(n, "framework", "python3 has no jax")
    else:
        jax_py = os.path.join(HERE, "fw_jax.py")
        r.pair("jax_basic", "framework", [py, jax_py, "basic"])
        if elapsed() < BUDGET_S - 30:
            r.timed("jax_platform_train", "train", [py, jax_py, "train"], {"XLA_PYTHON_CLIENT_ALLOCATOR": "platform"},
                    2, step_ms, "ms per training step", "ms", "per step", check.STEP_MAX_PCT)
        else:
            r.skip("jax_platform_train", "train", "time budget (VRAMSPY_GPU_BUDGET_S=%d) spent" % BUDGET_S)


# ---- checking ----

def analyse(results, tools):
    with open(os.path.join(results, "results.json")) as f:
        doc = json.load(f)
    traces = os.path.join(results, "traces")
    rows = []
    alloc_shared_leak = None
    for case in doc["cases"]:
        reports, extra, unread = [], None, []
        for t in case.get("traces", []):
            rep, text = check.report_of(tools.report, os.path.join(traces, t), tools.env)
            if rep is None:
                unread.append(text)
                continue
            reports.append(rep)
        if case["name"] == "alloc_shared" and reports:
            alloc_shared_leak = sum(f.get("bytes") or 0 for f in check.findings(check.main_report(reports), "leak"))
        if case["kind"] == "sanitizer" and "text_file" in case:
            case["vramspy_leak_bytes"] = alloc_shared_leak
            with open(os.path.join(results, case["text_file"])) as f:
                extra = f.read()
        if case["kind"] == "job" and case.get("traces"):
            paths = [os.path.join(traces, t) for t in case["traces"]]
            jp, tp = os.path.join(results, "job.json"), os.path.join(results, "job.txt")
            subprocess.run([tools.report, "--job", "--format", "json", "-o", jp] + paths, env=tools.env,
                           capture_output=True, timeout=300)
            subprocess.run([tools.report, "--job", "-o", tp] + paths, env=tools.env, capture_output=True, timeout=300)
            if os.path.exists(jp):
                with open(jp) as f:
                    case["job"] = json.load(f)
            if os.path.exists(tp):
                with open(tp) as f:
                    extra = f.read()
        row = check.evaluate(case, reports, extra)
        for err in unread:
            row["results"].append(check.Result(False, "vramspy-report reads every trace", err))
        rows.append(row)
    say("")
    say("vramspy GPU suite: %s" % doc["machine"].get("gpu"))
    say("  " + ", ".join("%s %s" % (k, v) for k, v in doc["machine"].items() if k != "gpu" and v))
    say("")
    say(check.table(rows))
    broken = any(r.get("results") and check.verdict(r["results"]) == "BROKEN" for r in rows)
    with open(os.path.join(results, "table.txt"), "w") as f:
        f.write(check.table(rows) + "\n")
    say("")
    say("%s in %.0f s; results in %s" % ("BROKEN promises" if broken else "every promise kept", elapsed(), results))
    return 1 if broken else 0


def main():
    ap = argparse.ArgumentParser(description="vramspy on a real GPU (tests/gpu/README.md)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("run")
    a.add_argument("--tools", default=os.environ.get("VRAMSPY_GPU_TOOLS"))
    a.add_argument("--results", default=os.environ.get("VRAMSPY_GPU_RESULTS", os.path.join(ROOT, "build", "gpu-results")))
    sub.add_parser("detect", help="print why there is no usable GPU and exit 3, or its device count and exit 0")
    b = sub.add_parser("analyse")
    b.add_argument("results")
    b.add_argument("--tools", default=os.environ.get("VRAMSPY_GPU_TOOLS"))
    args = ap.parse_args()
    if args.cmd == "detect":
        why = gpu_absent_reason()
        say(why or "a GPU is usable here")
        return 3 if why else 0
    if not args.tools:
        bundle = os.path.join(ROOT, "build", "gpu-bundle")
        args.tools = bundle if os.path.exists(os.path.join(bundle, "libvramspy.so")) else os.path.join(ROOT, "build")
    tools = Tools(args.tools)
    if args.cmd == "analyse":
        if not tools.report_ok:
            say("vramspy-report in %s cannot run here" % tools.dir)
            return 2
        return analyse(os.path.abspath(args.results), tools)
    why = gpu_absent_reason()
    if why:
        say("make test-gpu: SKIPPED: %s" % why)
        return 0
    if not os.path.exists(tools.shim):
        say("make test-gpu: no shim at %s (make shim, or carry make gpu-bundle)" % tools.shim)
        return 2
    results = os.path.abspath(args.results)
    if os.path.exists(results):
        shutil.rmtree(results)
    os.makedirs(results)
    say("vramspy GPU suite: tools %s (report %s), results %s" % (tools.dir, "runs here" if tools.report_ok else
        "cannot run here: traces kept for `analyse`", results))
    m = machine()
    say("machine: " + json.dumps(m))
    progs, err = build_programs(tools, os.path.join(results, "bin"))
    if err:
        say("nvcc programs: " + err)
    r = Runner(tools, results)
    run_cases(r, progs, err)
    with open(os.path.join(results, "results.json"), "w") as f:
        json.dump({"machine": m, "tools": tools.dir, "cases": r.cases}, f, indent=1)
    if not tools.report_ok:
        say("")
        say("NOT CHECKED: the cases ran and left traces in %s, but vramspy-report cannot run here." % results)
        say("Copy that directory to a machine with the report and run: make test-gpu-analyse GPU_RESULTS=DIR")
        return 4
    return analyse(results, tools)


if __name__ == "__main__":
    sys.exit(main())
