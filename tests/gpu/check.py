# GPU suite (tests/gpu): the promises each case must keep, checked on what a run left (vramspy-report
# JSON and text, exit statuses, stdout comparisons, timings), and the one table the suite prints.
# Pure functions of their inputs: tests/gpu/test_check.py runs them on the reports of the first H200
# run (tests/gpu/data/h200) on machines without a GPU. Never prints a figure it was not given.
import ast
import json
import os
import re
import statistics
import subprocess

COVERAGE_MIN = 95.0          # issue 23: where the memory is the process's own
ASYNC_PAIR_MAX_PCT = 30.0    # issue 22: real cudaMallocAsync+cudaFreeAsync pairs at depth 30
STEP_MAX_PCT = 5.0           # issue 22: a training step under the shim against the same run without
GROWTH_MIN = 32 << 20        # issue 19: vramspy-report's default --growth-min
MIB = 1 << 20
GIB = 1 << 30
HERE = os.path.dirname(os.path.abspath(__file__))


class Result:
    """One promise: ok True (kept), False (broken), None (not checked, detail says why)."""

    def __init__(self, ok, what, detail="", issue=None):
        self.ok, self.what, self.detail, self.issue = ok, what, detail, issue

    def __repr__(self):
        state = {True: "ok", False: "BROKEN", None: "not checked"}[self.ok]
        return "%s: %s%s%s" % (state, self.what, " (%s)" % self.detail if self.detail else "",
                               " [issue %s]" % self.issue if self.issue else "")


def human(n):
    for unit, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size:
            return "%.1f %s" % (n / size, unit)
    return "%d B" % n


# ---- coverage ----

def coverage(report):
    """(percent or None, why): the share of the process's device memory (used less the context
    baseline) that the trace accounts for, from the report's coverage fields; a pool's cached bytes
    (issue 19's pool_cached_bytes) count as accounted for."""
    cov = report.get("coverage")
    if not cov:
        return None, "no coverage sample in the trace"
    used, base = cov.get("used_bytes") or 0, cov.get("baseline_bytes") or 0
    untracked = cov.get("untracked_bytes") or 0
    own = used - base
    if own <= 0:
        # the sample was taken after the context was gone (README item 7): it says nothing
        return None, "the sample's used bytes (%s) are not above the context (%s)" % (human(used), human(base))
    pool = cov.get("pool_cached_bytes")
    return 100.0 * (own - untracked) / own, "%s untracked of %s%s" % (
        human(untracked), human(own), "" if pool is None else ", %s cached by stream-ordered pools" % human(pool))


def check_coverage(report, pool=False):
    """Coverage of at least COVERAGE_MIN; pool: the process allocates from a stream-ordered pool
    (PyTorch's backend:cudaMallocAsync), whose cache counts only where the report gives
    pool_cached_bytes (issue 19 item 3): a report without the field cannot keep the promise."""
    what = "coverage >= %.0f%%%s" % (COVERAGE_MIN, " counting pool_cached_bytes" if pool else "")
    pct, why = coverage(report)
    if pct is None:
        return Result(False, what, why, 19)
    if pool and "pool_cached_bytes" not in (report.get("coverage") or {}):
        return Result(False, what, "%.1f%%: %s; the report has no pool_cached_bytes, so the pool's cache "
                      "reads as untracked" % (pct, why), 19)
    return Result(pct >= COVERAGE_MIN, what, "%.1f%%: %s" % (pct, why), None if pct >= COVERAGE_MIN else 19)


# ---- findings ----

def findings(report, kind=None):
    fs = report.get("findings") or []
    return [f for f in fs if kind is None or f.get("kind") == kind]


def finding_counts(reports):
    counts = {}
    for r in reports:
        for f in findings(r):
            counts[f.get("kind")] = counts.get(f.get("kind"), 0) + 1
    return counts


def counts_text(counts):
    return ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())) or "none"


# What tests/gpu/alloc_families.cu plants: (kind, memory, bytes); the host pool only where the
# driver made one (its stdout says "host pool 8MiB ok").
PLANTED_HOST = [("managed", 8 * MIB), ("host_pinned", 4 * MIB), ("host_mapped", 2 * MIB),
                ("host_registered", 1 * MIB)]


def check_alloc_planted(report, host_pool):
    """The planted findings, exactly: one 64 MiB device leak, the host fallbacks, one 1 TiB oom,
    nothing else."""
    out = []
    leaks = findings(report, "leak")
    ok = len(leaks) == 1 and leaks[0].get("memory") == "device" and leaks[0].get("bytes") == 64 * MIB \
        and leaks[0].get("count") == 1
    out.append(Result(ok, "exactly the planted leak (64 MiB device, 1 allocation)",
                      "; ".join("%s %s x%s" % (f.get("memory"), human(f.get("bytes") or 0), f.get("count"))
                                for f in leaks) or "no leak finding"))
    want = PLANTED_HOST + ([("host_pool", 8 * MIB)] if host_pool else [])
    got = sorted((f.get("memory"), f.get("bytes")) for f in findings(report, "host_fallback") if not f.get("denied"))
    out.append(Result(got == sorted(want), "exactly the planted host fallbacks",
                      "got %s" % ", ".join("%s %s" % (m, human(b or 0)) for m, b in got) if got != sorted(want) else
                      "%d kinds of host memory" % len(got)))
    ooms = findings(report, "oom")
    ok = len(ooms) == 1 and ooms[0].get("requested") == 1 << 40 and ooms[0].get("count") == 1
    out.append(Result(ok, "exactly the planted out-of-memory (1 TiB)",
                      ", ".join("%s of %s x%s" % (f.get("api"), human(f.get("requested") or 0), f.get("count"))
                                for f in ooms) or "no oom finding"))
    other = {k: n for k, n in finding_counts([report]).items() if k not in ("leak", "host_fallback", "oom")}
    out.append(Result(not other, "no other finding", counts_text(other) if other else ""))
    return out


def check_enforce(report, host_pool):
    """VRAMSPY_ENFORCE=vram-only: every planted host family refused (denied), none allocated; the
    device findings unchanged; nothing else."""
    out = []
    denied = sorted(f.get("memory") for f in findings(report, "host_fallback") if f.get("denied"))
    want = sorted([m for m, _ in PLANTED_HOST] + (["host_pool"] if host_pool else []))
    out.append(Result(denied == want, "every host family refused", "denied: %s" % ", ".join(denied)))
    allowed = [f for f in findings(report, "host_fallback") if not f.get("denied")]
    out.append(Result(not allowed, "no host memory allocated",
                      ", ".join("%s %s" % (f.get("memory"), human(f.get("bytes") or 0)) for f in allowed)))
    leaks, ooms = findings(report, "leak"), findings(report, "oom")
    out.append(Result(len(leaks) == 1 and leaks[0].get("bytes") == 64 * MIB and len(ooms) == 1,
                      "the device leak and oom still found", "%d leak, %d oom" % (len(leaks), len(ooms))))
    other = {k: n for k, n in finding_counts([report]).items() if k not in ("leak", "host_fallback", "oom")}
    out.append(Result(not other, "no other finding", counts_text(other) if other else ""))
    return out


def check_nogpu(reports):
    """No device: nothing allocated, so no leak, host fallback or out-of-memory (a failed call is an
    alloc_error at most)."""
    bad = {k: n for k, n in finding_counts(reports).items() if k in ("leak", "host_fallback", "oom", "cached")}
    return [Result(not bad, "no memory findings without a device", counts_text(bad) if bad else
                   counts_text(finding_counts(reports)))]


def check_framework(report, oom_bytes=0, pinned_bytes=0, chunked=False, raw_leak_bytes=0):
    """Issue 19's contract for a framework process: no `leak` for what the framework holds until
    exit (raw_leak_bytes: but for the one raw cudaMalloc the process dropped, check_raw_leak),
    `cached` findings naming the holder; the planted out-of-memory and pinned memory found."""
    out = []
    leaks = findings(report, "leak")
    if raw_leak_bytes:
        out += check_raw_leak(report, raw_leak_bytes)
    else:
        out.append(Result(not leaks, "0 leak findings (framework memory held until exit)",
                          "%d leak findings, %s" % (len(leaks), human(sum(f.get("bytes") or 0 for f in leaks)))
                          if leaks else "", 19 if leaks else None))
    cached = findings(report, "cached")
    named = [f for f in cached if isinstance(f.get("held_by"), str) and f.get("held_by")]
    out.append(Result(bool(cached) and len(named) == len(cached), "cached findings naming their holder",
                      "%d cached, held by %s" % (len(cached), ", ".join(sorted({f["held_by"] for f in named})))
                      if cached else "no cached finding", None if named else 19))
    if oom_bytes:
        ooms = findings(report, "oom") + findings(report, "fragmentation")
        big = [f for f in ooms if (f.get("requested") or 0) >= oom_bytes]
        runs = [f for f in ooms if (f.get("chunk_run") or {}).get("released_chunks")]
        if chunked:
            # expandable segments: the failing call is one chunk; its run says how much was mapped
            ok = bool(runs)
            detail = ("chunk run: %d chunks, %s released" % (runs[0]["chunk_run"]["released_chunks"],
                                                            human(runs[0]["chunk_run"]["released_bytes"]))
                      if runs else "%s; no chunk_run on the failed cuMemCreate" %
                      ", ".join("%s of %s" % (f.get("api"), human(f.get("requested") or 0)) for f in ooms))
            out.append(Result(ok, "the planted out-of-memory, with the chunks mapped and released around it",
                              detail, None if ok else 23))
        else:
            out.append(Result(bool(big), "the planted out-of-memory (%s)" % human(oom_bytes),
                              ", ".join("%s of %s" % (f.get("api"), human(f.get("requested") or 0)) for f in ooms)
                              or "no oom finding"))
    if pinned_bytes:
        pinned = sum(f.get("bytes") or 0 for f in findings(report, "host_fallback") if f.get("memory") == "host_pinned")
        out.append(Result(pinned >= pinned_bytes, "the planted pinned host memory (%s)" % human(pinned_bytes),
                          "%s host_pinned" % human(pinned)))
    return out


def base(path):
    return os.path.basename(path or "")


FFI_FRAME = re.compile(r"^(libffi\.so|_ctypes[.\w-]*\.so)")
ALLOCATOR_FRAME = re.compile(r"CachingAllocator|CUDAMallocAsyncAllocator|HostAllocator")


def is_ffi_frame(fr):
    """A frame of libffi or of Python's _ctypes module (where libffi is linked in)."""
    return not fr.get("python") and (bool(FFI_FRAME.match(base(fr.get("module")))) or
                                     (fr.get("function") or "").startswith("ffi_call"))


def is_allocator_frame(fr):
    """A frame of PyTorch's caching allocators (device, cudaMallocAsync backend, pinned host)."""
    return not fr.get("python") and (base(fr.get("module")).startswith("libc10_cuda.so") or
                                     bool(ALLOCATOR_FRAME.search(fr.get("function") or "")))


def check_raw_leak(report, nbytes):
    """Issue 19 on a GPU: in a PyTorch process, a raw cudaMalloc through ctypes whose pointer is
    dropped is the one leak: exactly one leak finding, of that size in one allocation, called
    through libffi/ctypes and not by PyTorch's caching allocator."""
    leaks = findings(report, "leak")
    what = "exactly one leak: the raw %s cudaMalloc through ctypes" % human(nbytes)
    if len(leaks) != 1:
        return [Result(False, what, "%d leak findings: %s" % (len(leaks), "; ".join(
            "%s %s x%s" % (f.get("api"), human(f.get("bytes") or 0), f.get("count")) for f in leaks) or "none"), 19)]
    f = leaks[0]
    stack = f.get("stack") or []
    out = [Result(f.get("bytes") == nbytes and f.get("count") == 1, what,
                  "%s %s in %s allocation(s)" % (f.get("api"), human(f.get("bytes") or 0), f.get("count")))]
    ffi = [fr for fr in stack if is_ffi_frame(fr)]
    out.append(Result(bool(ffi), "the leak's stack goes through libffi/ctypes",
                      "%s" % ", ".join(sorted({base(fr.get("module")) for fr in ffi})) if ffi else
                      "none of its %d frames is libffi's or _ctypes'" % len(stack)))
    alloc = [fr for fr in stack if is_allocator_frame(fr)]
    out.append(Result(not alloc, "no caching-allocator frame in the leak's stack",
                      ", ".join(fr.get("function") or base(fr.get("module")) for fr in alloc)[:200], 19 if alloc else None))
    return out


def check_growth(report, want):
    """Issue 19 on a GPU: a training loop that appends a tensor to a global list every step gives a
    `growth` finding that rose at least GROWTH_MIN over the second half (want True); the same loop
    without the append gives none (want False)."""
    grows = findings(report, "growth")
    desc = "; ".join("+%s over the second half (%s at half, %s high, %s/s) by %s" % (
        human(f.get("bytes") or 0), human(f.get("bytes_at_half") or 0), human(f.get("bytes_high") or 0),
        human(int(f.get("rate_bytes_per_s") or 0)), f.get("api")) for f in grows)
    if not want:
        return [Result(not grows, "no growth finding for the same loop without the append", desc, 19 if grows else None)]
    fields = ("bytes_at_half", "bytes_high", "rate_bytes_per_s", "stack")
    big = [f for f in grows if (f.get("bytes") or 0) >= GROWTH_MIN and all(k in f for k in fields)]
    return [Result(bool(big), "a growth finding of at least %s over the second half" % human(GROWTH_MIN),
                   desc or "no growth finding", None if big else 19)]


# ---- Python frames (issue 21) ----

MARK = re.compile(r"\S.*#\s*gpu-check:\s*(\w+)\s*$")


def marked_lines(source):
    """{name: line} of the statements a case script marks `# gpu-check: NAME`."""
    out = {}
    for i, line in enumerate(source.splitlines(), 1):
        m = MARK.match(line.strip())
        if m:
            out[m.group(1)] = i
    return out


ANONYMOUS = {ast.Lambda: "<lambda>", ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>",
             ast.DictComp: "<dictcomp>", ast.GeneratorExp: "<genexpr>"}


def function_of_lines(source):
    """{line: names} for every line of a script: the innermost function whose definition spans it,
    as CPython names its frame (the qualified name, `outer.<locals>.inner`, `Class.method`, from
    3.11; the bare name before), or `<module>`; on a line with a lambda or a comprehension, its
    frame's names too (`<lambda>`; `<listcomp>` before 3.12 inlined them)."""
    names, extra = {}, {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                for ln in range(child.lineno, child.end_lineno + 1):
                    names[ln] = (qual, child.name)
                walk(child, qual + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                if type(child) in ANONYMOUS:
                    anon = ANONYMOUS[type(child)]
                    for ln in range(child.lineno, child.end_lineno + 1):
                        extra.setdefault(ln, []).extend([prefix + anon, anon])
                walk(child, prefix)
    walk(ast.parse(source), "")
    return {ln: names.get(ln, ("<module>",)) + tuple(extra.get(ln, ()))
            for ln in range(1, len(source.splitlines()) + 1)}


def python_frame_count(node):
    """How many Python frames ({"python": true, ...}) a report holds anywhere."""
    if isinstance(node, dict):
        return (1 if node.get("python") is True else 0) + sum(python_frame_count(v) for v in node.values())
    if isinstance(node, list):
        return sum(python_frame_count(v) for v in node)
    return 0


def check_python_frames(report, kinds, script, source, marker=None):
    """Issue 21 on a GPU: the findings of `kinds` carry Python frames of the case's script whose
    function and line agree with its source; with marker, one of them has as its innermost frame of
    the script exactly the marked line in its function. Not checked (never broken) where the
    report has no Python frame at all: a shim from before issue 21."""
    what = "%s findings name %s's lines" % ("/".join(kinds), script)
    if not python_frame_count(report):
        return [Result(None, what, "the report has no Python frame in any stack: a shim from before issue 21 "
                       "(or one that found no CPython in the process)")]
    lines = function_of_lines(source)
    fs = [f for k in kinds for f in findings(report, k)]
    framed = [(f, [fr for fr in f.get("stack") or [] if fr.get("python") and base(fr.get("file")) == script])
              for f in fs]
    framed = [(f, frs) for f, frs in framed if frs]
    if not framed:
        return [Result(False, what, "%d %s findings, none with a Python frame of %s" % (len(fs), "/".join(kinds), script), 21)]
    wrong = ["%s (%s:%s)" % (fr.get("function"), script, fr.get("line")) for _, frs in framed for fr in frs
             if fr.get("function") not in lines.get(fr.get("line"), ())]
    out = [Result(not wrong, what + " (function and line agree with the source)",
                  ("not as the source says: " + ", ".join(wrong[:4])) if wrong else
                  "%d of %d findings" % (len(framed), len(fs)), 21 if wrong else None)]
    if marker:
        line = marked_lines(source).get(marker)
        if line is None:
            out.append(Result(False, "%s marks `# gpu-check: %s`" % (script, marker), "no such line"))
            return out
        want = lines[line]
        hit = [f for f, frs in framed if frs[0].get("line") == line and frs[0].get("function") in want]
        got = sorted({"%s (%s:%s)" % (frs[0].get("function"), script, frs[0].get("line")) for _, frs in framed})
        out.append(Result(bool(hit), "a %s finding at %s (%s:%d)" % ("/".join(kinds), want[0], script, line),
                          "innermost frames of %s: %s" % (script, ", ".join(got[:6])), None if hit else 21))
    return out


# ---- behaviour, cost, witnesses ----

def check_same(case):
    """stdout and exit status identical without and with the shim."""
    p, s = case.get("plain") or {}, case.get("shim") or {}
    out = [Result(p.get("status") == s.get("status"), "exit status unchanged",
                  "plain %s, shim %s" % (p.get("status"), s.get("status")))]
    if case.get("stdout_same") is not None:
        out.append(Result(bool(case["stdout_same"]), "stdout unchanged", case.get("diff") or ""))
    return out


def added_pct(plain, shim):
    """(median plain, median shim, added %) of interleaved rounds."""
    p, s = statistics.median(plain), statistics.median(shim)
    return p, s, 100.0 * (s - p) / p


def check_cost(plain, shim, limit_pct, what, unit):
    if not plain or not shim:
        return Result(None, what, "no timing")
    p, s, pct = added_pct(plain, shim)
    return Result(pct <= limit_pct, "%s at most +%.0f%%" % (what, limit_pct),
                  "median %.4g %s plain, %.4g %s shim: %+.0f%% (rounds %s | %s)" %
                  (p, unit, s, unit, pct, " ".join("%g" % x for x in plain), " ".join("%g" % x for x in shim)),
                  None if pct <= limit_pct else 22)


def parse_sanitizer(text):
    """(bytes, allocations) of compute-sanitizer's LEAK SUMMARY, or None."""
    m = re.search(r"LEAK SUMMARY: (\d+) bytes leaked in (\d+) allocations", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_sanitizer(text, vramspy_leak_bytes):
    got = parse_sanitizer(text)
    if not got:
        return [Result(None, "compute-sanitizer's leak summary", "none printed")]
    agree = Result(None, "vramspy's leak agrees with compute-sanitizer", "no vramspy report of alloc_shared") \
        if vramspy_leak_bytes is None else \
        Result(vramspy_leak_bytes == got[0], "vramspy's leak agrees with compute-sanitizer",
               "vramspy %s" % human(vramspy_leak_bytes))
    return [Result(got == (64 * MIB, 1), "compute-sanitizer: the planted 64 MiB in 1 allocation",
                   "%d bytes in %d" % got), agree]


RAW_SITE = re.compile(r" at 0x[0-9a-f]+( <- 0x[0-9a-f]+)*(:|$)", re.M)


def check_job(job, job_text, ranks):
    """A torchrun job: one job view with every rank, no leak for framework memory, and its merged
    findings named as a single process's report names them (no raw addresses)."""
    out = []
    procs = (job or {}).get("processes") or []
    got = sorted(p.get("rank") for p in procs if p.get("rank") is not None)
    out.append(Result(got == list(range(ranks)), "one job view of ranks 0..%d" % (ranks - 1),
                      "ranks %s in %d processes" % (got, len(procs))))
    leaks = [f for f in (job or {}).get("findings") or [] if f.get("kind") == "leak"]
    out.append(Result(not leaks, "0 merged leak findings", "%d" % len(leaks) if leaks else "", 19 if leaks else None))
    raw = RAW_SITE.findall(job_text or "")
    out.append(Result(not raw, "merged findings name frames as single reports do",
                      "%d sites as raw addresses" % len(raw) if raw else "", 23 if raw else None))
    return out


# ---- the table ----

def verdict(results):
    if any(r.ok is False for r in results):
        return "BROKEN"
    if results and all(r.ok is None for r in results):
        return "not checked"
    return "ok"


def table(rows):
    """rows: dicts with case, same, coverage, findings, cost, results (or skip). One table, then each
    broken promise with its detail."""
    head = ("case", "out+status", "coverage", "findings", "cost", "verdict")
    lines = []
    for r in rows:
        if r.get("skip"):
            lines.append((r["case"], "-", "-", "-", "-", "SKIP: " + r["skip"]))
        else:
            lines.append((r["case"], r.get("same", "-"), r.get("coverage", "-"), r.get("findings", "-"),
                          r.get("cost", "-"), verdict(r["results"])))
    width = [max(len(str(x[i])) for x in lines + [head]) for i in range(len(head) - 1)]
    text = []
    for x in [head] + lines:
        text.append("  ".join(str(v).ljust(width[i]) for i, v in enumerate(x[:-1])) + "  " + str(x[-1]))
    broken = [(r["case"], res) for r in rows if not r.get("skip") for res in r["results"] if res.ok is False]
    if broken:
        text.append("")
        text.append("broken promises:")
        for case, res in broken:
            text.append("  %s: %s" % (case, res))
    unchecked = [(r["case"], res) for r in rows if not r.get("skip") for res in r["results"] if res.ok is None]
    for case, res in unchecked:
        text.append("  %s: %s" % (case, res))
    return "\n".join(text)


def row(case, results, report=None, reports=(), cost=None):
    """A table row for a case checked with `results`; report: its main report."""
    same = [r for r in results if r.what in ("exit status unchanged", "stdout unchanged")]
    r = {"case": case, "results": results,
         "same": ("yes" if all(x.ok for x in same) else "NO") if same else "-",
         "findings": counts_text(finding_counts(list(reports) or ([report] if report else []))) if (report or reports) else "-",
         "cost": cost or "-"}
    if report:
        pct, _ = coverage(report)
        r["coverage"] = "%.0f%%" % pct if pct is not None else "n/a"
    return r


# ---- a run's results directory (written by tests/gpu/suite.py) ----

def report_of(report_bin, trace, env=None):
    """The JSON and text reports of a trace, made once beside it; (json dict, text) or (None, error)."""
    j, t = trace[:-6] + ".json", trace[:-6] + ".txt"
    for fmt, path in (("json", j), ("text", t)):
        if not os.path.exists(path):
            p = subprocess.run([report_bin, "--format", fmt, "-o", path, trace], env=env,
                               capture_output=True, text=True, timeout=300)
            if p.returncode not in (0, 1):
                return None, "vramspy-report %s: %s" % (trace, p.stderr.strip()[:300])
    with open(j) as f:
        doc = json.load(f)
    with open(t) as f:
        return doc, f.read()


def main_report(reports):
    """The process that did the work: the report with the most events."""
    return max(reports, key=lambda r: (r.get("trace") or {}).get("events") or 0) if reports else None


def evaluate(case, reports, extra_text=None):
    """Results and the row of one case of a run (a dict from results.json), given the reports of its
    traces (and for the job and sanitizer cases, their text)."""
    name, kind = case["name"], case["kind"]
    if case.get("skip"):
        return {"case": name, "skip": case["skip"]}
    main = main_report(reports)
    res = []
    cost = None
    if kind in ("alloc", "framework", "train", "job"):
        st = (case.get("plain") or {}).get("status")
        res.append(Result(st == 0, "the case itself runs (exit 0 without the shim)", "exit %s" % st))
    if kind in ("alloc", "framework", "train", "nogpu", "job"):
        res += check_same(case)
    if kind in ("alloc", "framework", "train") and not main:
        res.append(Result(False, "a trace of the process", "the shim left no trace"))
    if kind == "alloc" and main:
        res.append(check_coverage(main))
        res += check_alloc_planted(main, case.get("host_pool", False))
    elif kind == "enforce" and main:
        res.append(Result(case["shim"]["status"] == case["plain"]["status"], "exit status unchanged",
                          "plain %s, enforced %s" % (case["plain"]["status"], case["shim"]["status"])))
        res += check_enforce(main, case.get("host_pool", False))
    elif kind == "nogpu":
        res += check_nogpu(reports)
    elif kind in ("framework", "train") and main:
        res.append(check_coverage(main, case.get("pool", False)))
        res += check_framework(main, case.get("oom_bytes", 0), case.get("pinned_bytes", 0), case.get("chunked", False),
                               case.get("raw_leak_bytes", 0))
        if case.get("growth") is not None:
            res += check_growth(main, case["growth"])
        pf = case.get("py_frames")
        if pf:
            with open(os.path.join(HERE, pf["script"])) as f:
                res += check_python_frames(main, pf["kinds"], pf["script"], f.read(), pf.get("marker"))
    elif kind == "gate":
        for want, got, flags in case["gates"]:
            res.append(Result(want == got, "vramspy run %s exits %d" % (flags, want), "exit %d" % got))
    elif kind == "sanitizer":
        res += check_sanitizer(extra_text, case.get("vramspy_leak_bytes"))
    elif kind == "job":
        res += check_job(case.get("job"), extra_text, case.get("ranks", 2))
    if "timing" in case:
        t = case["timing"]
        c = check_cost(t["plain"], t["shim"], t["limit_pct"], t["what"], t["unit"])
        res.append(c)
        if t["plain"] and t["shim"]:
            p, s, pct = added_pct(t["plain"], t["shim"])
            cost = "%+.0f%% %s" % (pct, t["short"])
    r = row(name, res, main, reports, cost)
    if kind == "job":
        r["coverage"] = "-"
        r["findings"] = counts_text({f.get("kind"): 1 for f in (case.get("job") or {}).get("findings") or []})
    return r
