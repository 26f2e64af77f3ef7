/* Integration tests of issue 21: Python frames in recorded stacks. tests/progs/pyframes.py calls
 * the fake runtime (through ctypes.PyDLL, or an extension module built here from
 * tests/progs/vspext.c) from nested functions, a method, a generator, an async def, a lambda,
 * module level, a second thread, a thread created in C without a thread state, a 200-deep
 * recursion and an atexit handler, and writes what the interpreter itself says each stack is.
 * The report's JSON stack of each allocation must hold exactly those frames (function, file,
 * line), innermost first, in place of the eval loop, cut at the depth limit; the interpreter's
 * output and exit status are unchanged; VRAMSPY_PYTHON=0 records none. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"
#define SCRIPT VSP_SOURCE_DIR "/tests/progs/pyframes.py"
#define LIBTHREAD VSP_PROGS "/libpythread.so"
#define MiB (1u << 20)

/* First line of a command's stdout; 0 when it printed one and succeeded. */
static int first_line(const char *cmd, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)len, f) != NULL;
    int st = pclose(f);
    out[strcspn(out, "\n")] = 0;
    return ok && st == 0 && out[0] ? 0 : -1;
}

/* The real interpreter behind `name` on PATH (a version manager's wrapper resolved), or skip. */
static int find_python(const char *name, char *exe, size_t len)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s -c 'import sys; print(sys.executable)' 2>/dev/null", name);
    return first_line(cmd, exe, len) == 0 && access(exe, X_OK) == 0 ? 0 : -1;
}

/* The report in JSON (through a file: stacks 64 Python frames deep outgrow a run's capture). */
static json_t *report_json(const char *trace)
{
    char cmd[8400], out[4200];
    snprintf(out, sizeof out, "%s.json", trace);
    snprintf(cmd, sizeof cmd, "'%s' --format json '%s' > '%s'", REPORT, trace, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s: %s", out, je.text);
    return j;
}

/* The stack of the leak of `bytes`. */
static json_t *leak_stack(json_t *report, json_int_t bytes)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(report, "findings"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        if (kind && !strcmp(kind, "leak") && json_integer_value(json_object_get(f, "bytes")) == bytes)
            return json_object_get(f, "stack");
    }
    return NULL;
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* The leak's Python frames against the interpreter's own view (expected, innermost first), cut
 * at depth; they come after the native call site, in the place of the eval-loop frames (none is
 * left before the last Python frame; a generator's frames sit apart, with the C calls between
 * them). Returns how many Python frames the stack has. */
static size_t check_stack(json_t *report, json_t *expected, json_int_t bytes, size_t depth, const char *what)
{
    json_t *stack = leak_stack(report, bytes);
    cr_assert_not_null(stack, "%s: a leak of %lld bytes is reported", what, (long long)bytes);
    size_t i, n = 0, at[256];
    json_t *fr;
    json_array_foreach(stack, i, fr)
    {
        if (json_is_true(json_object_get(fr, "python")))
            at[n < 256 ? n++ : 255] = i;
    }
    for (i = 0; n && i < at[n - 1]; i++) {
        const char *fn = json_string_value(json_object_get(json_array_get(stack, i), "function"));
        cr_assert(!fn || strncmp(fn, "_PyEval_EvalFrameDefault", 24) != 0,
                  "%s: frame %zu is an eval-loop frame left among the Python frames", what, i);
    }
    size_t want = json_array_size(expected) < depth ? json_array_size(expected) : depth;
    cr_assert_eq(n, want, "%s: %zu Python frames, the interpreter had %zu (depth %zu)", what, n,
                 json_array_size(expected), depth);
    if (!n)
        return 0;
    cr_assert_gt(at[0], 0, "%s: the native call site comes first", what);
    for (size_t k = 0; k < n; k++) {
        json_t *got = json_array_get(stack, at[k]), *exp = json_array_get(expected, k);
        const char *gf = json_string_value(json_object_get(got, "function"));
        const char *ef = json_string_value(json_object_get(exp, "function"));
        const char *gp = json_string_value(json_object_get(got, "path"));
        const char *gb = json_string_value(json_object_get(got, "file"));
        const char *ep = json_string_value(json_object_get(exp, "file"));
        json_int_t gl = json_integer_value(json_object_get(got, "line"));
        json_int_t el = json_integer_value(json_object_get(exp, "line"));
        cr_assert(gf && ef && !strcmp(gf, ef), "%s: frame %zu is %s, the interpreter says %s", what, k, gf, ef);
        cr_assert(gp && ep && !strcmp(gp, ep), "%s: frame %zu (%s) file %s, the interpreter says %s", what, k, ef,
                  gp, ep);
        cr_assert(gb && !strcmp(gb, base_name(ep)), "%s: frame %zu's file is the base name %s", what, k, gb);
        cr_assert_eq(gl, el, "%s: frame %zu (%s) line %lld, the interpreter says %lld", what, k, ef, (long long)gl,
                     (long long)el);
    }
    return n;
}

static const struct {
    json_int_t bytes;
    const char *what, *innermost_caller; /* the frame after alloc(), NULL: not checked */
} cases[] = {
    {1 * MiB, "nested functions", "inner"},
    {2 * MiB, "a method", "Model.load_weights"},
    {3 * MiB, "a generator", "gen"},
    {4 * MiB, "an async def", "coro"},
    {5 * MiB, "a lambda", "<lambda>"},
    {6 * MiB, "module level", "<module>"},
    {7 * MiB, "a second thread", "inner"},
    {8 * MiB, "a thread created in C", NULL},
    {9 * MiB, "200 Python frames", "recurse"},
    {10 * MiB, "an atexit handler", "at_exit"},
};

/* Run the script under `py` in mode (ctypes | ext) with env; check every case. Returns the
 * report (the caller frees it). */
static json_t *run_script(const char *py, const char *mode, const char *dir, const char *const *env, int python_on)
{
    char expect[4200], tdir[4200], trace[4096];
    snprintf(expect, sizeof expect, "%s/expect.json", dir);
    snprintf(tdir, sizeof tdir, "%s/traces", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    const char *argv[] = {py, SCRIPT, mode, VSP_FAKES "/libcudart.so.13", LIBTHREAD, expect, NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, tdir, env); /* asserts: same stdout, same exit status */
    cr_assert_eq(plain.code, 3, "the script exits with 3: %s%s", plain.out, plain.err);
    cr_assert(strstr(plain.out, "pyframes done"), "%s", plain.out);
    struct trace_summary s;
    th_one_trace(tdir, &s, NULL, trace);
    cr_assert_eq(s.allocs_ok, 11, "ten device allocations and a pinned one: %s", shim.err);
    json_error_t je;
    json_t *expected = json_load_file(expect, 0, &je);
    cr_assert_not_null(expected, "%s: %s", expect, je.text);
    json_t *report = report_json(trace);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)cases[c].bytes);
        json_t *exp = json_object_get(expected, key);
        cr_assert_not_null(exp, "the script noted %s", cases[c].what);
        if (!python_on)
            continue;
        size_t n = check_stack(report, exp, cases[c].bytes, 64, cases[c].what);
        if (cases[c].innermost_caller) {
            cr_assert_geq(n, 2, "%s: alloc and its caller", cases[c].what);
            json_t *stack = leak_stack(report, cases[c].bytes);
            size_t i;
            json_t *fr;
            json_array_foreach(stack, i, fr) if (json_is_true(json_object_get(fr, "python"))) break;
            cr_assert_str_eq(json_string_value(json_object_get(json_array_get(stack, i), "function")), "alloc");
            for (i++; !json_is_true(json_object_get(json_array_get(stack, i), "python")); i++)
                ; /* 3.9 and 3.10: C frames of the call between them */
            /* the qualified name from 3.11, the bare name (after the last dot) before */
            const char *got = json_string_value(json_object_get(json_array_get(stack, i), "function"));
            const char *want = cases[c].innermost_caller, *dot = strrchr(want, '.');
            cr_assert(got && (!strcmp(got, want) || (dot && !strcmp(got, dot + 1))), "%s: the caller is %s, not %s",
                      cases[c].what, got, want);
        } else {
            cr_assert_eq(n, 0, "%s: native frames only", cases[c].what);
        }
    }
    if (!python_on) { /* native frames only: every leak has one stack, without a Python frame */
        size_t i, k;
        json_t *f, *fr;
        json_int_t bytes = 0;
        json_array_foreach(json_object_get(report, "findings"), i, f)
        {
            if (strcmp(json_string_value(json_object_get(f, "kind")), "leak") != 0)
                continue;
            bytes += json_integer_value(json_object_get(f, "bytes"));
            json_array_foreach(json_object_get(f, "stack"), k, fr)
                cr_assert(!json_object_get(fr, "python"), "no Python frame with VRAMSPY_PYTHON=0");
        }
        cr_assert_eq(bytes, 66 * MiB, "every allocation leaked");
    }
    json_decref(expected);
    return report;
}

Test(pyframes, ctypes_every_shape_of_python_code, .timeout = 120)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    json_t *report = run_script(py, "ctypes", th_tmpdir(), NULL, 1);
    /* 200 Python frames are cut at the depth limit, like native ones: the innermost 64 kept */
    json_decref(report);
}

/* ctypes.CDLL releases the GIL around the call, as PyTorch's operators do before they reach the
 * caching allocator: the H200 run of 2026-12-04 had no Python frame in any framework stack while
 * the walk needed the GIL. The frames are read without it (the raw walk), the same frames, names
 * and lines as the interpreter's own view. */
Test(pyframes, gil_released_by_ctypes_cdll_keeps_python_frames, .timeout = 120)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    json_decref(run_script(py, "cdll", th_tmpdir(), NULL, 1));
}

Test(pyframes, extension_module_holding_the_gil, .timeout = 120)
{
    char py[4096], inc[4096], cmd[16384], probe[4200];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    snprintf(cmd, sizeof cmd, "'%s' -c \"import sysconfig; print(sysconfig.get_paths()['include'])\" 2>/dev/null", py);
    snprintf(probe, sizeof probe, "%s/Python.h", first_line(cmd, inc, sizeof inc) == 0 ? inc : "/nonexistent");
    if (access(probe, R_OK) != 0)
        cr_skip_test("no Python.h for %s (python3 development headers not installed)", py);
    char *dir = th_tmpdir(), pypath[4200];
    snprintf(cmd, sizeof cmd,
             "cc -shared -fPIC -O1 -g -I'%s' -o '%s/vspext.so' '%s/tests/progs/vspext.c' -L'%s' -l:libcudart.so.13 2>&1",
             inc, dir, VSP_SOURCE_DIR, VSP_FAKES);
    cr_assert_eq(system(cmd), 0, "building the extension module: %s", cmd);
    snprintf(pypath, sizeof pypath, "PYTHONPATH=%s", dir);
    const char *env[] = {pypath, NULL};
    json_decref(run_script(py, "ext", dir, env, 1));
}

Test(pyframes, vramspy_python_0_records_none, .timeout = 120)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    const char *env[] = {"VRAMSPY_PYTHON=0", NULL};
    json_decref(run_script(py, "ctypes", th_tmpdir(), env, 0));
}

/* Every CPython the machine has from 3.9 to 3.13 (python3.N on PATH, else a pyenv installation of
 * it): the frame walk, the entry frames of 3.11+ and the qualified names of each version, and
 * the same with the GIL released (ctypes.CDLL). Skips
 * when there is none. */
Test(pyframes, every_installed_cpython_3_9_to_3_13, .timeout = 300)
{
    int ran = 0;
    for (int minor = 9; minor <= 13; minor++) {
        char name[32], py[4096], dir[4200];
        snprintf(name, sizeof name, "python3.%d", minor);
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "for p in \"${PYENV_ROOT:-$HOME/.pyenv}\"/versions/3.%d.*/bin/python3.%d; do "
                 "[ -x \"$p\" ] && echo \"$p\" && exit 0; done; exit 1",
                 minor, minor);
        if (find_python(name, py, sizeof py) < 0 && first_line(cmd, py, sizeof py) < 0)
            continue;
        snprintf(dir, sizeof dir, "%s/%d", th_tmpdir(), minor);
        cr_assert_eq(mkdir(dir, 0700), 0);
        json_decref(run_script(py, "ctypes", dir, NULL, 1));
        { /* the GIL released: the raw walk */
            char dir2[4300];
            snprintf(dir2, sizeof dir2, "%s/cdll", dir);
            cr_assert_eq(mkdir(dir2, 0700), 0);
            json_decref(run_script(py, "cdll", dir2, NULL, 1));
        }
        ran++;
    }
    if (!ran)
        cr_skip_test("no python3.9 ... python3.13 on PATH");
}

/* Run a shell command made from fmt; the test fails unless it exits 0. */
static void shell_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void shell_ok(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The whole of a (small) file, NUL-terminated, in static storage. */
static const char *slurp(const char *path)
{
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    return text;
}

/* The script's ctypes shapes traced under the shim into dir/traces/t.trace (its path into trace);
 * skips the test without python3. */
static void ctypes_trace(const char *dir, char *trace, size_t len)
{
    char py[4096], tdir[4200], expect[4200];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    snprintf(tdir, sizeof tdir, "%s/traces", dir);
    snprintf(expect, sizeof expect, "%s/expect.json", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    const char *argv[] = {py, SCRIPT, "ctypes", VSP_FAKES "/libcudart.so.13", LIBTHREAD, expect, NULL};
    struct run_result r;
    th_run_traced(&r, argv, tdir, "t.trace", NULL);
    cr_assert_eq(r.code, 3, "%s", r.err);
    snprintf(trace, len, "%s/t.trace", tdir);
}

/* Suppressions match Python frames by function and file globs (vsp_frame_matches); the text
 * report's "at" line names the innermost Python frame; folded stacks, Perfetto, SVG, vramspy top
 * and vramspy-dump show them. */
Test(pyframes, suppressions_text_and_folded, .timeout = 120)
{
    char *dir = th_tmpdir(), trace[4300], supp[4200], cmd[16384];
    ctypes_trace(dir, trace, sizeof trace);
    snprintf(supp, sizeof supp, "%s/supp.json", dir);
    th_write_file(supp, "[{\"function\": \"Model.load_weights\"},"
                        " {\"kind\": \"leak\", \"function\": \"at_exit\", \"file\": \"*/pyframes.py\"},"
                        " {\"function\": \"gen\", \"file\": \"other.py\"}]");
    char out[4200];
    snprintf(out, sizeof out, "%s/supp.out.json", dir);
    snprintf(cmd, sizeof cmd, "'%s' --format json --suppress '%s' '%s' > '%s'", REPORT, supp, trace, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    cr_assert_null(leak_stack(j, 2 * MiB), "the method's leak is suppressed by its qualified name");
    cr_assert_null(leak_stack(j, 10 * MiB), "the atexit leak is suppressed by function and file");
    cr_assert_not_null(leak_stack(j, 3 * MiB), "a rule whose file glob does not match suppresses nothing");
    json_decref(j);
    /* text: the method's leak names the Python line in its "at" line */
    snprintf(out, sizeof out, "%s/report.txt", dir);
    shell_ok("'%s' '%s' > '%s'", REPORT, trace, out);
    const char *text = slurp(out);
    const char *leak = strstr(text, "LEAK 2.0 MiB");
    cr_assert_not_null(leak, "%s", text);
    const char *at = strstr(leak, "\n  at ");
    cr_assert_not_null(at);
    cr_assert(strstr(at, "alloc (pyframes.py:") != NULL && strstr(at, "alloc (pyframes.py:") < strchr(at + 1, '\n'),
              "the at line names the innermost Python frame: %.300s", at);
    cr_assert_not_null(strstr(leak, "Model.load_weights (pyframes.py:"), "the stack shows the method");
    /* folded */
    shell_ok("'%s' --format folded '%s' > '%s'", REPORT, trace, out);
    text = slurp(out);
    cr_assert_not_null(strstr(text, ";Model.load_weights_(pyframes.py:"), "folded: %.2000s", text);
    /* Perfetto and SVG: the host fallback's mark names its Python line */
    shell_ok("'%s' --format perfetto '%s' | grep -q '\"host fallback\".*\"python\":\"pinned (pyframes.py:[0-9]*)\"' && "
             "'%s' --format svg '%s' | grep -q '<title>host fallback: cudaMallocHost of [0-9]* bytes at pinned "
             "(pyframes.py:[0-9]*)</title>'",
             REPORT, trace, REPORT, trace);
    /* vramspy top (one frame: stdin is no terminal): a live call site names its Python line */
    shell_ok("timeout 30 '%s/vramspy' top '%s' < /dev/null | grep -q 'cudaMallocHost.*, Python: pinned (pyframes.py:[0-9]*)'",
             VSP_BUILD_DIR, trace);
    /* vramspy-dump: the code names and each stack's Python part */
    shell_ok("'%s/vramspy-dump' '%s' | grep -q '\"type\":\"pycode\",\"id\":[0-9]*,\"firstline\":[0-9]*,"
             "\"name\":\"Model.load_weights\",\"file\":\"[^\"]*/pyframes.py\"' && "
             "'%s/vramspy-dump' '%s' | grep -q '\"python\":\\[{\"code\":[0-9]*,\"line\":[0-9]*,\"entry\":'",
             VSP_BUILD_DIR, trace, VSP_BUILD_DIR, trace);
}

/* Holder rules (issue 19) match Python frames by function and file globs, as suppressions do. */
Test(pyframes, holder_rules_match_python_frames, .timeout = 120)
{
    char *dir = th_tmpdir(), trace[4300], rules[4200], out[4300], cmd[16384];
    ctypes_trace(dir, trace, sizeof trace);
    snprintf(rules, sizeof rules, "%s/holders.json", dir);
    th_write_file(rules, "[{\"held_by\": \"the model cache\", \"function\": \"Model.load_weights\"},"
                         " {\"held_by\": \"the exit cache\", \"function\": \"at_exit\", \"file\": \"*/pyframes.py\"},"
                         " {\"held_by\": \"nobody\", \"function\": \"gen\", \"file\": \"other.py\"}]");
    snprintf(out, sizeof out, "%s/out.json", dir);
    snprintf(cmd, sizeof cmd, "'%s' --format json --holders '%s' '%s' > '%s'", REPORT, rules, trace, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    cr_assert_null(leak_stack(j, 2 * MiB), "the method's memory is held, by its qualified name");
    cr_assert_null(leak_stack(j, 10 * MiB), "the atexit allocation is held, by function and file");
    cr_assert_not_null(leak_stack(j, 3 * MiB), "a rule whose file glob does not match holds nothing");
    size_t i, model = 0, atexit_held = 0;
    json_t *f;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        const char *by = json_string_value(json_object_get(f, "held_by"));
        model += by && !strcmp(by, "the model cache");
        atexit_held += by && !strcmp(by, "the exit cache");
        cr_assert(!by || strcmp(by, "nobody"), "the other.py rule matched");
    }
    cr_assert(model && atexit_held, "%s", slurp(out));
    json_decref(j);
}

/* No garbage collection (and so no finaliser) runs inside a hook while the frames are read: every
 * finaliser's cudaFree is a recorded free, none a call nested in the allocation's hook. */
Test(pyframes, no_collection_inside_a_hook, .timeout = 120)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    char *dir = th_tmpdir();
    const char *argv[] = {py, VSP_SOURCE_DIR "/tests/progs/pyframes_gc.py", VSP_FAKES "/libcudart.so.13", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(plain.code, 0, "%s%s", plain.out, plain.err);
    unsigned long freed = 0;
    cr_assert_eq(sscanf(plain.out, "freed %lu", &freed), 1, "%s", plain.out);
    cr_assert_gt(freed, 250, "the collector freed the holders: %s", plain.out);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.allocs_ok, 300);
    cr_assert_eq(s.frees_ok, freed, "every finaliser's free is recorded (%llu of %lu)", (unsigned long long)s.frees_ok,
                 freed);
}

/* A code object freed and its address reused never lends its name to another: 100 functions
 * compiled, called and dropped one after the other, each allocation named by its own; with the
 * GIL held (the shim holds a reference on each code it names) and released (it cannot: the
 * script counts the addresses that came back, and the names must still be right). */
static void reused_code_addresses(const char *mode)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {py, VSP_SOURCE_DIR "/tests/progs/pyframes_reuse.py", VSP_FAKES "/libcudart.so.13", mode,
                          NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    if (!strcmp(mode, "cdll"))
        cr_assert(!strstr(shim.err, "addresses reused 0\n"), "code addresses came back under the shim: %s", shim.err);
    cr_assert_eq(plain.code, 0, "%s%s", plain.out, plain.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert_eq(s.allocs_ok, 100);
    json_t *report = report_json(trace);
    for (int i = 0; i < 100; i++) {
        json_t *stack = leak_stack(report, 4096 * (i + 1));
        cr_assert_not_null(stack, "round %d's leak", i);
        size_t k;
        json_t *fr;
        json_array_foreach(stack, k, fr) if (json_is_true(json_object_get(fr, "python"))) break;
        char fn[32], file[32];
        snprintf(fn, sizeof fn, "f%d", i);
        snprintf(file, sizeof file, "gen%d.py", i);
        fr = json_array_get(stack, k);
        /* the qualified name o<i>.<locals>.f<i> from 3.11, the bare name before */
        const char *got = json_string_value(json_object_get(fr, "function"));
        char qual[64];
        snprintf(qual, sizeof qual, "o%d.<locals>.%s", i, fn);
        cr_assert(got && (!strcmp(got, fn) || !strcmp(got, qual)), "round %d: %s", i, got);
        cr_assert_str_eq(json_string_value(json_object_get(fr, "file")), file, "round %d", i);
        cr_assert_eq(json_integer_value(json_object_get(fr, "line")), 4, "round %d", i);
    }
    json_decref(report);
}

Test(pyframes, reused_code_address_keeps_its_own_name, .timeout = 120)
{
    reused_code_addresses("pydll");
}

Test(pyframes, reused_code_address_keeps_its_own_name_with_the_gil_released, .timeout = 120)
{
    reused_code_addresses("cdll");
}

/* One call chain allocating again and again (a training loop): its frames sit at the same
 * addresses each time, but run other functions from other lines. The shim remembers a capture
 * buffer's last Python frames and stack id (pyframes.h, struct vsp_py_memo); every group of
 * allocations must still get the interpreter's own frames, in the parent and in a forked child,
 * whose trace names its code objects again (the memo belongs to the parent's trace). */
static void repeated_call_chain(const char *mode)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    char *dir = th_tmpdir(), expect[4200], traces[2][4096];
    snprintf(expect, sizeof expect, "%s/expect.json", dir);
    const char *argv[] = {py,     VSP_SOURCE_DIR "/tests/progs/pyframes_repeat.py", VSP_FAKES "/libcudart.so.13", mode,
                          expect, VSP_PROGS "/libpythread.so",                   NULL};
    char probe[4400];
    snprintf(probe, sizeof probe, "'%s' -c 'import sys; sys.exit(sys.version_info < (3, 9))'", py);
    if (system(probe) != 0)
        cr_skip_test("python3 is older than 3.9: no Python frames");
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_str_eq(shim.out, "repeat done 0\n", "%s", shim.err);
    cr_assert_eq(th_list_traces(dir, traces, 2), 2, "the parent's trace and the child's");
    for (int t = 0; t < 2; t++) {
        struct trace_summary s;
        cr_assert_eq(th_summarize(traces[t], &s, NULL), 0);
        char exp_path[4300];
        json_t *report = report_json(traces[t]);
        /* which process wrote it: the child's has the parent's pid as its ppid */
        int child = 0;
        for (int u = 0; u < 2; u++) {
            struct trace_summary o;
            if (u != t && th_summarize(traces[u], &o, NULL) == 0 && s.ppid == o.pid)
                child = 1;
        }
        snprintf(exp_path, sizeof exp_path, "%s%s", expect, child ? ".child" : "");
        json_error_t je;
        json_t *doc = json_load_file(exp_path, 0, &je);
        cr_assert_not_null(doc, "%s: %s", exp_path, je.text);
        cr_assert_eq(s.allocs_ok, 81, "%s", traces[t]);
        cr_assert_eq(s.stack_refs_missing, 0, "%s: every event's stack is in its own trace", traces[t]);
        json_t *exp = json_object_get(doc, "groups"), *native = json_object_get(doc, "native"),
               *native_got = json_object();
        /* Each leak's Python frames are one group's, whole (a group may have several leaks: a
         * first call can take another native path, 3.13's unspecialised call), and the groups'
         * bytes add up. */
        json_t *got = json_object();
        size_t i, k;
        int edges = 0;
        json_t *f, *fr;
        json_array_foreach(json_object_get(report, "findings"), i, f)
        {
            if (strcmp(json_string_value(json_object_get(f, "kind")), "leak") != 0)
                continue;
            /* one Python call site on two native paths: each path its own stack */
            const char *path = NULL;
            json_array_foreach(json_object_get(f, "stack"), k, fr)
            {
                const char *fn = json_string_value(json_object_get(fr, "function"));
                if (fn && (!strcmp(fn, "pythread_alloc_here") || !strcmp(fn, "pythread_alloc_other")))
                    path = fn;
            }
            json_t *inner = NULL;
            json_array_foreach(json_object_get(f, "stack"), k, fr) if (json_is_true(json_object_get(fr, "python")))
            {
                inner = fr;
                break;
            }
            const char *inner_fn = inner ? json_string_value(json_object_get(inner, "function")) : NULL;
            if (inner_fn && !strcmp(inner_fn, "edge")) { /* the allocation on each side of the fork */
                cr_assert_eq(json_integer_value(json_object_get(f, "bytes")), 4096 * 1000, "%s", traces[t]);
                json_t *caller = NULL;
                for (size_t c = k + 1; !caller && c < json_array_size(json_object_get(f, "stack")); c++)
                    if (json_is_true(json_object_get(json_array_get(json_object_get(f, "stack"), c), "python")))
                        caller = json_array_get(json_object_get(f, "stack"), c);
                cr_assert_str_eq(json_string_value(json_object_get(caller, "function")), "fork_after", "%s",
                                 traces[t]);
                edges++;
                continue;
            }
            if (path) {
                json_object_set_new(native_got, path,
                                    json_integer(json_integer_value(json_object_get(native_got, path)) +
                                                 json_integer_value(json_object_get(f, "bytes"))));
                continue;
            }
            const char *group, *match = NULL;
            json_t *g;
            json_object_foreach(exp, group, g)
            {
                json_t *want = json_object_get(g, "frames");
                size_t n = 0, same = 1;
                json_array_foreach(json_object_get(f, "stack"), k, fr)
                {
                    if (!json_is_true(json_object_get(fr, "python")))
                        continue;
                    json_t *w = json_array_get(want, n++);
                    same = same && w &&
                           !strcmp(json_string_value(json_object_get(fr, "function")),
                                   json_string_value(json_object_get(w, "function"))) &&
                           !strcmp(json_string_value(json_object_get(fr, "path")),
                                   json_string_value(json_object_get(w, "file"))) &&
                           json_integer_value(json_object_get(fr, "line")) ==
                               json_integer_value(json_object_get(w, "line"));
                }
                if (same && n == json_array_size(want) && n >= 4)
                    match = group;
            }
            cr_assert_not_null(match, "%s: a leak of %lld bytes whose Python frames are no group's", traces[t],
                               (long long)json_integer_value(json_object_get(f, "bytes")));
            json_object_set_new(got, match,
                                json_integer(json_integer_value(json_object_get(got, match)) +
                                             json_integer_value(json_object_get(f, "bytes"))));
        }
        const char *group;
        json_t *g;
        json_object_foreach(exp, group, g)
        {
            cr_assert_eq(json_integer_value(json_object_get(got, group)), json_integer_value(json_object_get(g, "bytes")),
                         "%s, group %s: every allocation of the group has its frames", child ? "child" : "parent",
                         group);
        }
        const char *fn;
        json_object_foreach(native, fn, g)
        {
            cr_assert_eq(json_integer_value(json_object_get(native_got, fn)), json_integer_value(g),
                         "%s: the allocations through %s have that native frame", child ? "child" : "parent", fn);
        }
        cr_assert_eq(edges, 1, "%s: the allocation next to the fork, named in this trace", traces[t]);
        json_decref(native_got);
        json_decref(got);
        json_decref(doc);
        json_decref(report);
    }
}

Test(pyframes, a_repeated_call_chain_keeps_each_allocations_frames, .timeout = 120)
{
    repeated_call_chain("pydll");
}

Test(pyframes, a_repeated_call_chain_keeps_each_allocations_frames_with_the_gil_released, .timeout = 120)
{
    repeated_call_chain("cdll");
}

/* Purpose rules match Python frames: in the shim (VRAMSPY_PURPOSES, a label recorded per stack,
 * the eval-loop frames standing for the Python frames they ran) and in the report (--purposes). */
Test(pyframes, purpose_rules_match_python_frames, .timeout = 120)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    char *dir = th_tmpdir(), tdir[4200], trace[4300], expect[4200], rules[4200], out[4200];
    snprintf(tdir, sizeof tdir, "%s/traces", dir);
    snprintf(expect, sizeof expect, "%s/expect.json", dir);
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    /* the second thread's innermost frame in threading.py is Thread.run */
    th_write_file(rules, "{\"weights\": {\"function\": [\"Model.load_weights\"]}, \"gen\": {\"function\": [\"gen\"]},"
                         " \"exit\": [\"at_exit\"], \"thread\": {\"file\": [\"threading.py\"]}}");
    char env_rules[4300];
    snprintf(env_rules, sizeof env_rules, "VRAMSPY_PURPOSES=%s", rules);
    const char *env[] = {env_rules, NULL};
    const char *argv[] = {py, SCRIPT, "ctypes", VSP_FAKES "/libcudart.so.13", LIBTHREAD, expect, NULL};
    struct run_result r;
    th_run_traced(&r, argv, tdir, "t.trace", env);
    cr_assert_eq(r.code, 3, "%s", r.err);
    snprintf(trace, sizeof trace, "%s/t.trace", tdir);
    for (int pass = 0; pass < 2; pass++) { /* labels recorded by the shim; then the report's rules */
        snprintf(out, sizeof out, "%s/p%d.json", dir, pass);
        shell_ok("'%s' --format json %s%s '%s' > '%s'", REPORT, pass ? "--purposes " : "", pass ? rules : "",
                 trace, out);
        json_error_t je;
        json_t *j = json_load_file(out, 0, &je);
        cr_assert_not_null(j, "%s", je.text);
        json_t *ps = json_object_get(j, "purposes");
        const struct {
            const char *label;
            json_int_t bytes;
        } want[] = {{"weights", 2 * MiB}, {"gen", 3 * MiB}, {"exit", 10 * MiB}, {"thread", 7 * MiB}};
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
            json_t *row = th_json_find(ps, "label", want[k].label);
            cr_assert_not_null(row, "pass %d: a %s purpose", pass, want[k].label);
            cr_assert_eq(json_integer_value(json_object_get(row, "allocated_bytes")), want[k].bytes, "pass %d: %s",
                         pass, want[k].label);
        }
        json_decref(j);
    }
}

/* Four threads walk their Python frames at once with the GIL released, sharing the line cache
 * and the code table: every kept allocation is named by its own thread's functions and lines. */
Test(pyframes, threads_without_the_gil_name_their_own_frames, .timeout = 120)
{
    char py[4096];
    if (find_python("python3", py, sizeof py) < 0)
        cr_skip_test("no python3 on PATH");
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {py, VSP_SOURCE_DIR "/tests/progs/pyframes_threads.py", VSP_FAKES "/libcudart.so.13", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(plain.code, 0, "%s%s", plain.out, plain.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert_eq(s.allocs_ok, 4 * 2001);
    json_t *report = report_json(trace);
    for (int k = 0; k < 4; k++) {
        json_t *stack = leak_stack(report, (json_int_t)(k + 1) << 20);
        cr_assert_not_null(stack, "thread %d's kept allocation is a leak", k);
        char step[32], worker[32], file[32];
        snprintf(step, sizeof step, "step_%d", k);
        snprintf(worker, sizeof worker, "worker_%d", k);
        snprintf(file, sizeof file, "thread%d.py", k);
        size_t i, seen = 0;
        json_t *fr;
        json_array_foreach(stack, i, fr)
        {
            if (!json_is_true(json_object_get(fr, "python")) || seen >= 2)
                continue;
            const char *want = seen ? worker : step;
            cr_assert_str_eq(json_string_value(json_object_get(fr, "function")), want, "thread %d frame %zu", k, seen);
            cr_assert_str_eq(json_string_value(json_object_get(fr, "file")), file, "thread %d", k);
            cr_assert_eq(json_integer_value(json_object_get(fr, "line")), seen ? 7 : 3, "thread %d %s", k, want);
            seen++;
        }
        cr_assert_eq(seen, 2, "thread %d: step and worker frames", k);
    }
    json_decref(report);
}

/* A process that exports CPython's API as 3.12 does but is laid out otherwise (an embedded or
 * custom-built interpreter; tests/progs/prog_fakepython.c): the layout check fails through its
 * checked copies and no unchecked offset is followed. Before that rule the process died of
 * SIGSEGV at its first allocation (the code table's key read the junk "name" pointer). */
Test(pyframes, interpreter_laid_out_otherwise_runs_unchanged, .timeout = 60)
{
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {VSP_PROGS "/prog_fakepython", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL); /* asserts: same stdout, same exit status */
    cr_assert_eq(plain.code, 0, "%s%s", plain.out, plain.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert_eq(s.allocs_ok, 2);
    json_t *report = report_json(trace);
    json_t *stack = leak_stack(report, 2u << 20);
    cr_assert_not_null(stack, "the kept 2 MiB is a leak with its stack");
    size_t i, n = 0;
    json_t *fr;
    json_array_foreach(stack, i, fr) if (json_is_true(json_object_get(fr, "python")))
    {
        /* the C API walk's one frame: the fake API has no names, its line is 7 */
        cr_assert_str_eq(json_string_value(json_object_get(fr, "function")), "?");
        cr_assert_eq(json_integer_value(json_object_get(fr, "line")), 7);
        n++;
    }
    cr_assert_eq(n, 1, "one Python frame, from the C API walk");
    json_decref(report);
}
