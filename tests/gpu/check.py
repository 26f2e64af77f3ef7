# GPU suite (tests/gpu): the promises each case must keep, checked on what a run left (vramspy-report
# JSON and text, exit statuses, stdout comparisons, timings), and the one table the suite prints.
# Pure functions of their inputs: tests/gpu/test_check.py runs them on the reports of the first H200
# run (tests/gpu/data/h200) on machines without a GPU. Never prints a figure it was not given.
import json
import os
import re
import statistics
import subprocess

COVERAGE_MIN = 95.0          # issue 23: where the memory is the process's own
ASYNC_PAIR_MAX_PCT = 30.0    # issue 22: real cudaMallocAsync+cudaFreeAsync pairs at depth 30
STEP_MAX_PCT = 5.0           # issue 22: a training step under the shim against the same run without
MIB = 1 << 20
GIB = 1 << 30


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
    return 100.0 * (own - untracked) / own, "%s untracked of %s" % (human(untracked), human(own))


def check_coverage(report):
    pct, why = coverage(report)
    if pct is None:
        return Result(False, "coverage >= %.0f%%" % COVERAGE_MIN, why, 19)
    return Result(pct >= COVERAGE_MIN, "coverage >= %.0f%%" % COVERAGE_MIN, "%.1f%%: %s" % (pct, why),
                  None if pct >= COVERAGE_MIN else 19)


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


def check_framework(report, oom_bytes=0, pinned_bytes=0, chunked=False):
    """Issue 19's contract for a framework process: no `leak` for what the framework holds until
    exit, `cached` findings naming the holder; the planted out-of-memory and pinned memory found."""
    out = []
    leaks = findings(report, "leak")
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
        res.append(check_coverage(main))
        res += check_framework(main, case.get("oom_bytes", 0), case.get("pinned_bytes", 0), case.get("chunked", False))
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
