# Unit tests of the GPU suite's checker (tests/gpu/check.py) on what the first H200 run measured
# (tests/gpu/data/h200, from ../shared/gpu-2026-12-04): the checker passes what held there and
# flags, with the issue that fixes it, what that run's README says broke. Runs without a GPU:
# `python3 tests/gpu/test_check.py` (make test runs it through tests/test_gpu_suite.c).
import ast
import ctypes
import ctypes.util
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402

DATA = os.path.join(HERE, "data", "h200")


def load(name):
    with open(os.path.join(DATA, name + ".json")) as f:
        return json.load(f)


def text(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def broken(results):
    return [r for r in results if r.ok is False]


def same_case(name, kind, **kw):
    # the logs said "status plain 0 shim 0; stdout SAME" for every case below
    c = {"name": name, "kind": kind, "plain": {"status": 0}, "shim": {"status": 0}, "stdout_same": True}
    c.update(kw)
    return c


class Coverage(unittest.TestCase):
    def test_percent_as_the_report_computes_it(self):
        pct, why = check.coverage(load("alloc_static"))
        self.assertAlmostEqual(pct, 99.39, places=1)  # the report's text said 99%
        self.assertIn("2.0 MiB untracked", why)
        self.assertAlmostEqual(check.coverage(load("torch_basic"))[0], 87.8, places=0)  # "87%"

    def test_what_fell_short_on_the_h200(self):
        for name, low in (("torch_basic", 87), ("torch_train", 94), ("torch_async", 13), ("jax", 80)):
            r = check.check_coverage(load(name))
            self.assertIs(r.ok, False, name)
            self.assertEqual(r.issue, 19, name)
            self.assertTrue(r.detail.startswith(str(low)), (name, r.detail))
        for name in ("alloc_static", "alloc_shared", "torch_expandable", "cupy"):
            self.assertIs(check.check_coverage(load(name)).ok, True, name)

    def test_a_sample_below_the_context_says_nothing(self):
        rep = {"coverage": {"used_bytes": 0, "baseline_bytes": 543162368, "untracked_bytes": 0}}
        pct, why = check.coverage(rep)
        self.assertIsNone(pct)
        self.assertIn("not above the context", why)
        self.assertIs(check.check_coverage(rep).ok, False)
        self.assertEqual(check.coverage({})[0], None)


class Planted(unittest.TestCase):
    def test_both_runtimes_found_exactly_the_planted_findings(self):
        for name in ("alloc_static", "alloc_shared"):
            res = check.check_alloc_planted(load(name), host_pool=True)
            self.assertEqual(broken(res), [], name)

    def test_a_missing_or_extra_finding_is_broken(self):
        rep = load("alloc_static")
        # without the host pool in the program's output, its host_pool finding is one too many
        self.assertEqual(len(broken(check.check_alloc_planted(rep, host_pool=False))), 1)
        rep["findings"] = [f for f in rep["findings"] if f["kind"] != "leak"]
        self.assertEqual([r.what for r in broken(check.check_alloc_planted(rep, host_pool=True))],
                         ["exactly the planted leak (64 MiB device, 1 allocation)"])
        rep["findings"].append({"kind": "invalid_free", "api": "cudaFree"})
        self.assertEqual(len(broken(check.check_alloc_planted(rep, host_pool=True))), 2)

    def test_no_device(self):
        self.assertEqual(broken(check.check_nogpu([load("alloc_shared_nogpu")])), [])
        self.assertEqual(broken(check.check_nogpu([])), [])  # the static runtime left no trace
        self.assertEqual(len(broken(check.check_nogpu([load("alloc_static")]))), 1)

    def test_enforce_refused_every_host_family_and_the_old_script_freed_what_it_never_got(self):
        res = check.check_enforce(load("enforce"), host_pool=True)
        # the H200 script unregistered memory whose registration had been refused: an invalid_free
        # (cudaHostUnregister 713); tests/gpu/alloc_families.cu frees only what it got
        self.assertEqual([(r.what, r.detail) for r in broken(res)], [("no other finding", "1 invalid_free")])


class Frameworks(unittest.TestCase):
    def test_every_framework_process_leaked_on_the_h200(self):
        # README "What the GPU revealed" 1: held memory reported as leak (13 findings for torch basic,
        # 9 of them leaks; 33 for the training run, 31 leaks); no cached kind yet
        for name, n in (("torch_basic", 9), ("torch_train", 31), ("cupy", 2), ("jax", 9)):
            res = check.check_framework(load(name))
            leak, cached = res[0], res[1]
            self.assertIs(leak.ok, False, name)
            self.assertEqual(leak.issue, 19)
            self.assertTrue(leak.detail.startswith("%d leak findings" % n), (name, leak.detail))
            self.assertIs(cached.ok, False, name)
            self.assertEqual(cached.detail, "no cached finding")

    def test_issue_19_contract_passes_once_held_memory_is_cached(self):
        rep = load("torch_basic")
        for f in rep["findings"]:
            if f["kind"] == "leak":
                f["kind"], f["held_by"] = "cached", "PyTorch caching allocator"
        res = check.check_framework(rep, oom_bytes=400 * check.GIB, pinned_bytes=4 * check.MIB)
        self.assertEqual(broken(res), [])
        self.assertIn("held by PyTorch caching allocator", res[1].detail)
        rep["findings"][0]["held_by"] = ""
        self.assertIs(check.check_framework(rep)[1].ok, False, "a cached finding must name its holder")

    def test_planted_oom_and_pinned_memory(self):
        res = check.check_framework(load("torch_basic"), oom_bytes=400 * check.GIB, pinned_bytes=4 * check.MIB)
        self.assertEqual([r.ok for r in res[2:]], [True, True])
        res = check.check_framework(load("cupy"), oom_bytes=400 * check.GIB, pinned_bytes=4 * check.MIB)
        self.assertEqual([r.ok for r in res[2:]], [True, True])

    def test_expandable_segments_oom_named_only_the_chunk(self):
        # README item 6: "cuMemCreate of 20.0 MiB failed", nothing about the 139 GiB mapped before
        res = check.check_framework(load("torch_expandable"), oom_bytes=400 * check.GIB, chunked=True)
        oom = res[2]
        self.assertIs(oom.ok, False)
        self.assertEqual(oom.issue, 23)
        self.assertIn("cuMemCreate of 20.0 MiB", oom.detail)
        rep = load("torch_expandable")
        f = [f for f in rep["findings"] if f["kind"] == "oom"][0]
        f["chunk_run"] = {"chunks": 7127, "bytes": 7127 * 20 * check.MIB, "released_chunks": 7127,
                          "released_bytes": 7127 * 20 * check.MIB}
        self.assertIs(check.check_framework(rep, oom_bytes=400 * check.GIB, chunked=True)[2].ok, True)


# ---- issue 19 and 21 on a GPU: synthetic reports shaped like the H200 ones ----

TORCH_PY = os.path.join(HERE, "fw_torch.py")
with open(TORCH_PY) as _f:
    TORCH_SRC = _f.read()
LINE = check.marked_lines(TORCH_SRC)  # {"kept": N, "raw": N, "grow": N}


def line_of(text):
    """The line of fw_torch.py that is `text`, or else starts with it (the callers' lines of a
    synthetic Python stack)."""
    lines = [ln.strip() for ln in TORCH_SRC.splitlines()]
    return ([i for i, ln in enumerate(lines, 1) if ln == text] or
            [i for i, ln in enumerate(lines, 1) if ln.startswith(text)])[0]


MAIN = line_of('{"basic": basic, "train": train')  # the module-level dispatch


def held(name):
    """An H200 framework report as issue 19 reads it: what was a leak is cached by its holder."""
    rep = load(name)
    for f in rep["findings"]:
        if f["kind"] == "leak":
            f["kind"], f["held_by"] = "cached", "PyTorch caching allocator"
    return rep


def py(function, line, file="/work/vramspy/tests/gpu/fw_torch.py"):
    return {"python": True, "function": function, "file": file, "line": line}


def native(module, function, offset="0x1000"):
    return {"address": "0x7f0000001000", "module": module, "function": function, "file": None, "line": None,
            "offset": offset}


EVAL = native("/usr/bin/python3.12", "_PyEval_EvalFrameDefault")
ALLOC_BLOCK = load("torch_basic")["findings"][0]["stack"][0]  # c10's DeviceCachingAllocator::alloc_block


def raw_leak_finding(stack=None, nbytes=24 * check.MIB):
    return {"kind": "leak", "api": "cudaMalloc", "memory": "device", "count": 1, "bytes": nbytes,
            "stack": stack if stack is not None else [
                native("site-packages/nvidia/cu13/lib/libcudart.so.13", "cudaMalloc"),
                native("/usr/lib/x86_64-linux-gnu/libffi.so.8", "ffi_call_unix64"),
                native("/usr/lib/x86_64-linux-gnu/libffi.so.8", "ffi_call"),
                native("/usr/lib/python3.12/lib-dynload/_ctypes.cpython-312-x86_64-linux-gnu.so", None),
                py("raw_leak", LINE["raw"]), py("raw", line_of('print("raw cudaMalloc of 24 MiB:", raw_leak(rt))')), py("<module>", MAIN)]}


def growth_finding(stack=None, rise=240 * check.MIB):
    return {"kind": "growth", "api": "cudaMalloc", "memory": "device", "count": 24, "bytes": rise,
            "bytes_at_half": 200 * check.MIB, "bytes_high": 200 * check.MIB + rise, "rate_bytes_per_s": 80.0 * check.MIB,
            "stack": stack if stack is not None else [ALLOC_BLOCK, EVAL, py("grow_step", LINE["grow"]),
                                                      py("grow_loop", line_of("grow_step(model, opt, x, append)")),
                                                      py("grow", line_of("grow_loop(True)")), py("<module>", MAIN)]}


class RawLeak(unittest.TestCase):
    def test_the_raw_cudaMalloc_through_ctypes_is_the_one_leak(self):
        rep = held("torch_basic")
        rep["findings"].append(raw_leak_finding())
        res = check.check_framework(rep, raw_leak_bytes=24 * check.MIB)
        self.assertEqual(broken(res), [])
        self.assertEqual([r.what for r in res[:3]], ["exactly one leak: the raw 24.0 MiB cudaMalloc through ctypes",
                                                     "the leak's stack goes through libffi/ctypes",
                                                     "no caching-allocator frame in the leak's stack"])
        self.assertEqual(res[1].detail, "_ctypes.cpython-312-x86_64-linux-gnu.so, libffi.so.8")

    def test_libffi_linked_into_ctypes_counts(self):
        # python.org and conda builds link libffi into _ctypes: only its ffi_call frame says so
        rep = held("torch_basic")
        rep["findings"].append(raw_leak_finding([native("libcudart.so.13", "cudaMalloc"),
                                                 native("_ctypes.cpython-311-x86_64-linux-gnu.so", "ffi_call")]))
        self.assertEqual(broken(check.check_raw_leak(rep, 24 * check.MIB)), [])
        rep["findings"][-1]["stack"] = [native("libcudart.so.13", "cudaMalloc"), native("python3.11", "ffi_call_SYSV")]
        self.assertEqual(broken(check.check_raw_leak(rep, 24 * check.MIB)), [])

    def test_held_memory_still_reported_as_leak_is_broken(self):
        # the H200 run: 9 leaks besides; the raw one among them is not "the one leak"
        rep = load("torch_basic")
        rep["findings"].append(raw_leak_finding())
        res = check.check_raw_leak(rep, 24 * check.MIB)
        self.assertEqual(len(res), 1)
        self.assertEqual((res[0].ok, res[0].issue), (False, 19))
        self.assertTrue(res[0].detail.startswith("10 leak findings: cudaMalloc 128.0 MiB x4; "), res[0].detail)
        self.assertTrue(res[0].detail.endswith("; cudaMalloc 24.0 MiB x1"), res[0].detail)
        res = check.check_raw_leak(held("torch_basic"), 24 * check.MIB)
        self.assertEqual((res[0].ok, res[0].detail), (False, "0 leak findings: none"))

    def test_wrong_size_no_ctypes_frame_or_an_allocator_frame_is_broken(self):
        rep = held("torch_basic")
        rep["findings"].append(raw_leak_finding(nbytes=8 * check.MIB))
        self.assertEqual([r.what for r in broken(check.check_raw_leak(rep, 24 * check.MIB))],
                         ["exactly one leak: the raw 24.0 MiB cudaMalloc through ctypes"])
        rep["findings"][-1] = raw_leak_finding([native("libcudart.so.13", "cudaMalloc"), EVAL])
        self.assertEqual([r.what for r in broken(check.check_raw_leak(rep, 24 * check.MIB))],
                         ["the leak's stack goes through libffi/ctypes"])
        rep["findings"][-1] = raw_leak_finding([ALLOC_BLOCK, native("libffi.so.8", "ffi_call")])
        bad = broken(check.check_raw_leak(rep, 24 * check.MIB))
        self.assertEqual([r.what for r in bad], ["no caching-allocator frame in the leak's stack"])
        self.assertIn("DeviceCachingAllocator::alloc_block", bad[0].detail)


class Growth(unittest.TestCase):
    def test_the_appending_loop_grows(self):
        rep = held("torch_train")
        rep["findings"].append(growth_finding())
        res = check.check_growth(rep, True)
        self.assertEqual(broken(res), [])
        self.assertEqual(res[0].detail, "+240.0 MiB over the second half (200.0 MiB at half, 440.0 MiB high, "
                                        "80.0 MiB/s) by cudaMalloc")

    def test_no_growth_small_growth_or_a_finding_without_its_fields_is_broken(self):
        rep = held("torch_train")
        res = check.check_growth(rep, True)
        self.assertEqual((res[0].ok, res[0].issue, res[0].detail), (False, 19, "no growth finding"))
        rep["findings"].append(growth_finding(rise=16 * check.MIB))  # a report run with --growth-min 16MiB
        self.assertIs(check.check_growth(rep, True)[0].ok, False)
        g = growth_finding()
        del g["bytes_at_half"]
        rep["findings"][-1] = g
        self.assertIs(check.check_growth(rep, True)[0].ok, False)

    def test_the_same_loop_without_the_append_does_not_grow(self):
        rep = held("torch_train")
        self.assertEqual(broken(check.check_growth(rep, False)), [])
        rep["findings"].append(growth_finding())
        res = check.check_growth(rep, False)
        self.assertEqual((res[0].ok, res[0].issue), (False, 19))
        self.assertIn("+240.0 MiB over the second half", res[0].detail)


class PoolCoverage(unittest.TestCase):
    def test_the_h200_async_backend_had_no_pool_part(self):
        r = check.check_coverage(load("torch_async"), pool=True)
        self.assertEqual((r.ok, r.issue), (False, 19))
        self.assertEqual(r.what, "coverage >= 95% counting pool_cached_bytes")
        self.assertIn("the report has no pool_cached_bytes", r.detail)

    def test_the_pool_cache_counts_as_accounted_for(self):
        # the H200's 1.5 GiB untracked, now (issue 19 item 3) all but 12 MiB named as the pool's cache
        rep = load("torch_async")
        cov = rep["coverage"]
        cov["pool_cached_bytes"] = cov["untracked_bytes"] - 12 * check.MIB
        cov["untracked_bytes"] = 12 * check.MIB
        r = check.check_coverage(rep, pool=True)
        self.assertIs(r.ok, True, r.detail)
        self.assertTrue(r.detail.startswith("99.3%: 12.0 MiB untracked of 1.8 GiB, 1.5 GiB cached by stream-ordered "
                                            "pools"), r.detail)
        cov["pool_cached_bytes"], cov["untracked_bytes"] = 12 * check.MIB, 1634158584 - 12 * check.MIB
        r = check.check_coverage(rep, pool=True)
        self.assertEqual((r.ok, r.issue), (False, 19))


class PythonFrames(unittest.TestCase):
    def test_the_script_marks_one_line_statements_in_module_level_functions(self):
        self.assertEqual(sorted(LINE), ["grow", "kept", "raw"])
        fn = check.function_of_lines(TORCH_SRC)
        self.assertEqual({k: fn[v][0] for k, v in LINE.items()}, {"kept": "basic", "raw": "raw_leak", "grow": "grow_step"})
        for stmt in ast.walk(ast.parse(TORCH_SRC)):
            if isinstance(stmt, ast.stmt) and stmt.lineno in LINE.values():
                self.assertEqual(stmt.lineno, stmt.end_lineno, "one line: the frame's line is the statement's")

    def test_function_of_lines_names_frames_as_cpython_does(self):
        src = ("import x\n"                      # 1
               "class Model:\n"                  # 2
               "    def load(self):\n"           # 3
               "        return 1\n"              # 4
               "def train():\n"                  # 5
               "    def step(b):\n"              # 6
               "        return b\n"              # 7
               "    return step(2)\n"            # 8
               "async def fetch():\n"            # 9
               "    await y  # gpu-check: f\n")  # 10
        fn = check.function_of_lines(src)
        self.assertEqual(fn[1], ("<module>",))
        self.assertEqual(fn[4], ("Model.load", "load"))
        self.assertEqual(fn[7], ("train.<locals>.step", "step"))
        self.assertEqual(fn[8], ("train", "train"))
        self.assertEqual(fn[10], ("fetch", "fetch"))
        self.assertEqual(check.marked_lines(src), {"f": 10})

    def test_a_report_without_python_frames_is_not_checked(self):
        # the H200 reports predate issue 21: not a broken promise, and says why
        for name in ("torch_basic", "torch_train"):
            res = check.check_python_frames(held(name), ["cached"], "fw_torch.py", TORCH_SRC, "kept")
            self.assertEqual(len(res), 1)
            self.assertIs(res[0].ok, None)
            self.assertIn("no Python frame in any stack", res[0].detail)
            self.assertIn("before issue 21", res[0].detail)

    def test_growth_names_the_append_line(self):
        rep = held("torch_train")
        rep["findings"].append(growth_finding())
        res = check.check_python_frames(rep, ["growth"], "fw_torch.py", TORCH_SRC, "grow")
        self.assertEqual(broken(res), [])
        self.assertEqual(res[1].what, "a growth finding at grow_step (fw_torch.py:%d)" % LINE["grow"])
        # a torch-internal Python frame innermost: the script's innermost frame is what counts
        rep["findings"][-1]["stack"].insert(2, py("_apply", 900, "/site-packages/torch/nn/modules/module.py"))
        self.assertEqual(broken(check.check_python_frames(rep, ["growth"], "fw_torch.py", TORCH_SRC, "grow")), [])

    def test_a_wrong_line_or_function_is_broken(self):
        rep = held("torch_train")
        rep["findings"].append(growth_finding([ALLOC_BLOCK, py("grow_step", LINE["grow"] - 1)]))
        res = check.check_python_frames(rep, ["growth"], "fw_torch.py", TORCH_SRC, "grow")
        self.assertEqual([(r.ok, r.issue) for r in res], [(True, None), (False, 21)])  # still in grow_step
        self.assertIn("grow_step (fw_torch.py:%d)" % (LINE["grow"] - 1), res[1].detail)
        rep["findings"][-1]["stack"] = [ALLOC_BLOCK, py("grow_loop", LINE["grow"])]
        res = check.check_python_frames(rep, ["growth"], "fw_torch.py", TORCH_SRC, "grow")
        self.assertEqual([(r.ok, r.issue) for r in res], [(False, 21), (False, 21)])
        self.assertEqual(res[0].detail, "not as the source says: grow_loop (fw_torch.py:%d)" % LINE["grow"])

    def test_python_frames_elsewhere_but_none_in_the_findings_is_broken(self):
        rep = held("torch_basic")
        rep["findings"].append(growth_finding())
        res = check.check_python_frames(rep, ["cached"], "fw_torch.py", TORCH_SRC, "kept")
        self.assertEqual(len(res), 1)
        self.assertEqual((res[0].ok, res[0].issue), (False, 21))
        self.assertTrue(res[0].detail.endswith("none with a Python frame of fw_torch.py"), res[0].detail)

    def test_cached_findings_of_the_training_loop_agree_with_the_source(self):
        # no marked line: any frame of the script, its function as 3.11+ (qualified) or 3.9/3.10 name it
        step_line = TORCH_SRC.splitlines().index("    def step(batch):") + 2
        rep = held("torch_train")
        rep["findings"][0]["stack"] += [EVAL, py("train.<locals>.step", step_line), py("train", step_line + 11)]
        rep["findings"][1]["stack"] += [EVAL, py("step", step_line)]
        res = check.check_python_frames(rep, ["cached"], "fw_torch.py", TORCH_SRC)
        self.assertEqual(broken(res), [])
        self.assertEqual(res[0].detail, "2 of %d findings" % len(check.findings(rep, "cached")))
        rep["findings"][1]["stack"][-1] = py("train", step_line)
        self.assertIs(check.check_python_frames(rep, ["cached"], "fw_torch.py", TORCH_SRC)[0].ok, False)

    def test_a_marker_missing_from_the_script_is_broken(self):
        rep = held("torch_train")
        rep["findings"].append(growth_finding())
        res = check.check_python_frames(rep, ["growth"], "fw_torch.py", TORCH_SRC, "no_such_mark")
        self.assertEqual((res[-1].ok, res[-1].detail), (False, "no such line"))


def script_functions(*names):
    """fw_torch.py's module-level functions and constants of `names`, without running the script
    (it imports torch): its raw mode, on a machine without torch or a GPU."""
    tree = ast.parse(TORCH_SRC)
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names or
            isinstance(n, ast.Assign) and any(getattr(t, "id", None) in names for t in n.targets)]
    ns = {"os": os, "ctypes": ctypes, "glob": glob}
    exec(compile(ast.Module(body=body, type_ignores=[]), TORCH_PY, "exec"), ns)
    return ns


class RawLeakScript(unittest.TestCase):
    def test_it_calls_the_runtime_the_process_loaded(self):
        # make test (tests/test_gpu_suite.c) names the test doubles; their libcudart.so.13 stands
        # for the one PyTorch loads (site-packages/nvidia/cu13/lib on the H200)
        fakes = os.environ.get("VSP_FAKES")
        if not fakes:
            self.skipTest("VSP_FAKES (the test doubles' directory) is not set: make test sets it")
        path = os.path.join(fakes, "libcudart.so.13")
        ctypes.CDLL(path)
        ns = script_functions("loaded_cudart", "open_cudart", "raw_leak", "RAW_BYTES")
        self.assertEqual(os.path.realpath(ns["loaded_cudart"]()), os.path.realpath(path))
        rt = ns["open_cudart"]()
        self.assertEqual(os.path.realpath(rt._name), os.path.realpath(path))
        self.assertIs(ns["raw_leak"](rt), True)  # the test doubles' runtime gave 24 MiB


class RawLeakUnderTheShim(unittest.TestCase):
    def test_the_shim_records_it_as_the_checker_expects(self):
        # fw_torch.py's raw cudaMalloc through ctypes, on the test doubles under the shim: the stack
        # shape a GPU run must show (libffi/_ctypes frames, no allocator frame; with issue 21 the
        # marked line), proven with the checker's own functions where there is no GPU
        fakes, preload, report = (os.environ.get(k) for k in ("VSP_FAKES", "VSP_PRELOAD", "VSP_REPORT"))
        if not (fakes and preload and report):
            self.skipTest("VSP_FAKES, VSP_PRELOAD and VSP_REPORT are not set: make test sets them")
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "raw.trace")
            env = dict(os.environ, LD_LIBRARY_PATH=fakes, LD_PRELOAD=preload, VRAMSPY_OUT=trace)
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--raw-leak",
                                os.path.join(fakes, "libcudart.so.13")], env=env, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual((p.returncode, p.stdout), (0, "raw cudaMalloc of 24 MiB: True\n"), p.stderr)
            rep, err = check.report_of(report, trace)
            self.assertIsNotNone(rep, err)
        res = check.check_raw_leak(rep, 24 * check.MIB)
        self.assertEqual([r.ok for r in res], [True, True, True], res)
        pf = check.check_python_frames(rep, ["leak"], "fw_torch.py", TORCH_SRC, "raw")
        self.assertNotIn(False, [r.ok for r in pf], pf)  # not checked before issue 21, kept after


class NewCases(unittest.TestCase):
    """The rows of the cases issue 19 and 21 added, as the suite records them (suite.py)."""

    def frames(self, kinds, marker=None):
        return {"script": "fw_torch.py", "kinds": kinds, "marker": marker}

    def test_grow_steady_and_raw_leak_rows(self):
        grow = held("torch_train")
        grow["findings"].append(growth_finding())
        raw = held("torch_basic")
        raw["findings"].append(raw_leak_finding())
        cases = [(same_case("torch_grow", "framework", growth=True, py_frames=self.frames(["growth"], "grow")), [grow]),
                 (same_case("torch_steady", "framework", growth=False), [grow]),
                 (same_case("torch_raw_leak", "framework", raw_leak_bytes=24 * check.MIB,
                            py_frames=self.frames(["leak"], "raw")), [raw])]
        rows = [check.evaluate(c, reps) for c, reps in cases]
        # held("torch_train") keeps the H200's 94% coverage: that promise stays broken (issue 19 item 3)
        self.assertEqual([[r.what for r in broken(row["results"])] for row in rows],
                         [["coverage >= 95%"],
                          ["coverage >= 95%", "no growth finding for the same loop without the append"],
                          ["coverage >= 95%"]])
        self.assertEqual([row["findings"] for row in rows],
                         ["31 cached, 1 growth, 2 host_fallback"] * 2 + ["9 cached, 2 host_fallback, 1 leak, 2 oom"])
        self.assertIs(rows[2]["results"][-1].ok, True)  # raw_leak (fw_torch.py:N)
        self.assertIn("raw_leak (fw_torch.py:%d)" % LINE["raw"], rows[2]["results"][-1].what)

    def test_the_async_backend_row_counts_the_pool(self):
        c = same_case("torch_async_train", "train", pool=True, py_frames=self.frames(["cached"]))
        row = check.evaluate(c, [held("torch_async")])
        cov = [r for r in row["results"] if r.what.startswith("coverage")]
        self.assertEqual([(r.what, r.ok, r.issue) for r in cov],
                         [("coverage >= 95% counting pool_cached_bytes", False, 19)])
        self.assertIs(row["results"][-1].ok, None)  # no Python frames in the H200 report: not checked
        self.assertEqual(row["coverage"], "14%")  # 13.6%: the H200 text said 13%


class Cost(unittest.TestCase):
    def test_async_pairs_and_steps_as_measured(self):
        m = load("measured")
        for key in ("bench_async_depth30_pass1", "bench_async_depth30_pass2"):
            r = check.check_cost(m[key]["plain_ns"], m[key]["shim_ns"], check.ASYNC_PAIR_MAX_PCT, "pair", "ns")
            self.assertIs(r.ok, False, key)  # +101% and +196%: README item 4
            self.assertEqual(r.issue, 22)
        a = m["torch_train_async_step_ms"]
        r = check.check_cost(a["plain"], a["shim"], check.STEP_MAX_PCT, "step", "ms")
        self.assertIs(r.ok, False)
        self.assertIn("+30%", r.detail)  # medians 8.775 and 11.395
        d = m["torch_train_default_step_ms"]
        self.assertIs(check.check_cost(d["plain"], d["shim"], check.STEP_MAX_PCT, "step", "ms").ok, True)
        self.assertIs(check.check_cost([], [1.0], 5, "step", "ms").ok, None)


class Witnesses(unittest.TestCase):
    def test_compute_sanitizer_agrees_with_the_planted_leak(self):
        s = text("sanitizer.txt")
        self.assertEqual(check.parse_sanitizer(s), (64 * check.MIB, 1))
        leak = [f for f in load("alloc_shared")["findings"] if f["kind"] == "leak"][0]["bytes"]
        self.assertEqual(broken(check.check_sanitizer(s, leak)), [])
        self.assertEqual(len(broken(check.check_sanitizer(s, 32 * check.MIB))), 1)

    def test_job_text_with_raw_addresses_is_flagged(self):
        job = {"processes": [{"rank": 0}, {"rank": 1}], "findings": [{"kind": "leak"}] * 18}
        res = check.check_job(job, text("job_text.txt"), 2)
        self.assertIs(res[0].ok, True)
        self.assertEqual((res[1].ok, res[1].issue), (False, 19))
        self.assertEqual((res[2].ok, res[2].issue, res[2].detail), (False, 23, "3 sites as raw addresses"))
        fixed = "  leak 128.0 MiB in 2 calls by cuMemAlloc_v2 at libcublas.so.13+0x5b45ee <- libcublas.so.13+0x585c43: in 2"
        self.assertIs(check.check_job(job, fixed, 2)[2].ok, True)


class Table(unittest.TestCase):
    def test_one_row_per_case_and_every_broken_promise_listed(self):
        cases = [
            (same_case("alloc_static", "alloc", host_pool=True), [load("alloc_static")]),
            (same_case("torch_basic", "framework", oom_bytes=400 * check.GIB, pinned_bytes=4 * check.MIB),
             [load("torch_basic")]),
            ({"name": "cupy", "kind": "framework", "skip": "no module named cupy"}, []),
        ]
        rows = [check.evaluate(c, reps) for c, reps in cases]
        out = check.table(rows)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("case"))
        self.assertRegex(lines[1], r"^alloc_static +yes +99% +1 host_fallback|^alloc_static +yes +99% ")
        self.assertTrue(lines[1].endswith("ok"), lines[1])
        self.assertTrue(lines[2].endswith("BROKEN"), lines[2])
        self.assertIn("SKIP: no module named cupy", lines[3])
        self.assertIn("torch_basic: BROKEN: 0 leak findings", out)
        self.assertIn("[issue 19]", out)
        self.assertEqual(check.verdict([check.Result(None, "x")]), "not checked")


class ShippedHoldersOnTheSuiteRun(unittest.TestCase):
    """make test-gpu's first run on the H200 (data/h200-suite/leaks.json) reported every framework
    allocation as a leak: the carried bundle had no holders.json beside its report, which then
    ran without rules (the rules are built into the report since). The shipped rules
    (report/holders.json, matched as the report matches: fnmatch(3) globs on the function and the
    module's base name) must hold every one of those leaks but the planted ones: the nvcc
    programs' 64 MiB cudaMalloc and fw_torch.py's raw 24 MiB cudaMalloc through ctypes."""

    def test_every_framework_leak_of_the_h200_suite_run_has_a_holder_but_the_planted_ones(self):
        import fnmatch
        with open(os.path.join(HERE, "..", "..", "report", "holders.json")) as f:
            rules = json.load(f)
        with open(os.path.join(HERE, "data", "h200-suite", "leaks.json")) as f:
            cases = json.load(f)["cases"]

        def holder(frames):
            for fn, mod in frames:
                for r in rules:
                    if "file" in r or ("function" not in r and "module" not in r):
                        continue
                    if "function" in r and not fnmatch.fnmatchcase(fn, r["function"]):
                        continue
                    if "module" in r and not fnmatch.fnmatchcase(mod, r["module"]):
                        continue
                    return r["held_by"]
            return None

        held, planted = 0, 0
        for case, leaks in cases.items():
            for lk in leaks:
                by = holder(lk["frames"])
                is_planted = (case.startswith(("alloc_", "enforce_")) and lk["bytes"] == 64 * check.MIB) or \
                    (case == "torch_raw_leak" and lk["bytes"] == 24 * check.MIB)
                if is_planted:
                    self.assertIsNone(by, "%s: the planted %d bytes are a leak, not held by %s" % (case, lk["bytes"], by))
                    planted += 1
                else:
                    self.assertIsNotNone(by, "%s: %s of %d bytes has no holder: %s" % (
                        case, lk["api"], lk["bytes"], [f[0] or f[1] for f in lk["frames"][:6]]))
                    held += 1
        self.assertEqual(planted, 5)
        self.assertEqual(held, 137)  # every other leak finding of that run


if __name__ == "__main__":
    if sys.argv[1:2] == ["--raw-leak"]:  # the child of RawLeakUnderTheShim: fw_torch.py's raw mode, no torch
        ctypes.CDLL(sys.argv[2])  # loaded first, as PyTorch loads its runtime
        ns = script_functions("loaded_cudart", "open_cudart", "raw_leak", "RAW_BYTES")
        print("raw cudaMalloc of 24 MiB:", ns["raw_leak"](ns["open_cudart"]()))
        sys.exit(0)
    unittest.main(verbosity=1)
