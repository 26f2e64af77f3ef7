# Unit tests of the GPU suite's checker (tests/gpu/check.py) on what the first H200 run measured
# (tests/gpu/data/h200, from ../shared/gpu-2026-12-04): the checker passes what held there and
# flags, with the issue that fixes it, what that run's README says broke. Runs without a GPU:
# `python3 tests/gpu/test_check.py` (make test runs it through tests/test_gpu_suite.c).
import json
import os
import sys
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


if __name__ == "__main__":
    unittest.main(verbosity=1)
