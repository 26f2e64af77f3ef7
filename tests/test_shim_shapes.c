/* Integration tests of issue #10: the shim never changes the host program, in every real process
 * shape — libraries loaded RTLD_LOCAL (ctypes, Python extension modules, plugins, two runtimes in
 * one process), a driver lookup that hands back interposed symbols, a runtime that unloads the
 * driver, plugins unloaded and reloaded, descriptors closed and reused behind the shim's back, a
 * free that blocks, closed pipes, a file size limit, setuid, garbage configuration in processes
 * that never touch CUDA, a zero-byte allocation and a raw fork. Each case runs the program with
 * and without the shim where that makes sense, checks that the plain run shows the shape for real,
 * and then what the trace and the report say. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MiB (1024ull * 1024ull)
#define REPORT VSP_BUILD_DIR "/vramspy-report"

/* ---- helpers ---- */


/* Every stderr line is the shim's own ("vramspy: ..."): the program said nothing of its own. */
static int only_shim_lines(const char *err)
{
    for (const char *line = err; *line;) {
        if (strncmp(line, "vramspy: ", 9) != 0)
            return 0;
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return 1;
}

/* `vramspy-report --format json TRACE`, parsed. */
/* Does the leak of `bytes` have a frame in function `fn`? */
static int leak_stack_names(json_t *j, uint64_t bytes, const char *fn)
{
    size_t i, k;
    json_t *f, *frame;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        if (!kind || strcmp(kind, "leak") != 0 || (uint64_t)json_integer_value(json_object_get(f, "bytes")) != bytes)
            continue;
        json_array_foreach(json_object_get(f, "stack"), k, frame)
        {
            const char *name = json_string_value(json_object_get(frame, "function"));
            if (name && !strcmp(name, fn))
                return 1;
        }
    }
    return 0;
}

/* First line of a command's stdout (trailing newline removed); 0 when it printed one. */
static int command_line(const char *cmd, char *out, size_t len)
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

/* The interpreter `python3` on PATH runs (sys.executable: a version manager's wrapper script
 * resolved to the real binary, so that only the interpreter runs under the shim). */
static void find_python_or_skip(char *exe, size_t len)
{
    if (command_line("python3 -c 'import sys; print(sys.executable)' 2>/dev/null", exe, len) < 0 ||
        access(exe, X_OK) != 0)
        cr_skip_test("no python3 on PATH");
}

/* How many lines of text contain needle. */
static int lines_with(const char *text, const char *needle)
{
    int n = 0;
    char line[8192];
    for (const char *p = text; *p;) {
        size_t l = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(l < sizeof line ? l : sizeof line - 1), p);
        n += strstr(line, needle) != NULL;
        p += l;
        if (*p)
            p++;
    }
    return n;
}

static void read_file(const char *path, char *buf, size_t len, size_t *n_out)
{
    buf[0] = 0;
    *n_out = 0;
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    *n_out = n;
    fclose(f);
}

/* ---- 1-3: libraries in a local scope (Python) ---- */

static void python_ctypes_case(const char *lib, const char *fn, const char *ncodes, int driver)
{
    char py[4096];
    find_python_or_skip(py, sizeof py);
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {py, VSP_SOURCE_DIR "/tests/progs/ctypes_plugin.py", lib, fn, ncodes, NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(plain.code, 0, "the plugin works without the shim: %s%s", plain.out, plain.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    if (driver) {
        cr_assert_eq(s.by_api[VSP_API_cuMemAlloc_v2], 2, "both cuMemAlloc calls are in the trace");
        cr_assert_eq(s.by_api[VSP_API_cuMemFree_v2], 1);
    } else {
        cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 2, "both cudaMalloc calls are in the trace");
        cr_assert_eq(s.by_api[VSP_API_cudaFree], 1);
    }
    cr_assert_eq(s.allocs_ok, 2, "one event per call, none for the driver calls underneath");
    cr_assert_eq(s.frees_ok, 1);
    json_t *j = th_report_json(trace);
    cr_assert(leak_stack_names(j, 2 * MiB, fn), "the 2 MiB leak's stack names %s", fn);
    json_decref(j);
}

Test(shim_shapes, python_ctypes_runtime_library, .timeout = 60)
{
    python_ctypes_case(VSP_PROGS "/libplug13.so", "plug_alloc_free", "3", 0);
}

Test(shim_shapes, python_extension_module_linking_runtime, .timeout = 90)
{
    char py[4096], inc[4096], cmd[16384], probe[4200];
    find_python_or_skip(py, sizeof py);
    snprintf(cmd, sizeof cmd, "'%s' -c \"import sysconfig; print(sysconfig.get_paths()['include'])\" 2>/dev/null", py);
    if (command_line(cmd, inc, sizeof inc) < 0)
        cr_skip_test("python3 does not say where its headers are");
    snprintf(probe, sizeof probe, "%s/Python.h", inc);
    if (access(probe, R_OK) != 0)
        cr_skip_test("no Python.h in %s (python3 development headers not installed)", inc);
    if (system("cc --version >/dev/null 2>&1") != 0)
        cr_skip_test("no C compiler (cc) to build the extension module");
    char *dir = th_tmpdir(), trace[4096], pypath[4200];
    snprintf(cmd, sizeof cmd,
             "cc -shared -fPIC -O1 -g -fno-omit-frame-pointer -I'%s' -o '%s/vspext.so' '%s/tests/progs/vspext.c' "
             "-L'%s' -l:libcudart.so.13 2>&1",
             inc, dir, VSP_SOURCE_DIR, VSP_FAKES);
    cr_assert_eq(system(cmd), 0, "building the extension module: %s", cmd);
    snprintf(pypath, sizeof pypath, "PYTHONPATH=%s", dir);
    const char *argv[] = {py, "-c",
                          "import sys, vspext\n"
                          "c = vspext.alloc_free()\n"
                          "print('alloc_free', *c)\n"
                          "sys.exit(1 if any(c) else 0)\n",
                          NULL};
    const char *env[] = {pypath, NULL};
    /* the traces go to a subdirectory: dir holds the module */
    char tdir[4200];
    snprintf(tdir, sizeof tdir, "%s/traces", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, tdir, env);
    cr_assert_eq(plain.code, 0, "the module works without the shim: %s%s", plain.out, plain.err);
    struct trace_summary s;
    th_one_trace(tdir, &s, NULL, trace);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 2);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 1);
    cr_assert_eq(s.allocs_ok, 2);
    cr_assert_eq(s.frees_ok, 1);
    json_t *j = th_report_json(trace);
    cr_assert(leak_stack_names(j, 2 * MiB, "vspext_alloc_free"), "the 2 MiB leak's stack names vspext_alloc_free");
    json_decref(j);
}

Test(shim_shapes, python_ctypes_driver_library, .timeout = 60)
{
    python_ctypes_case(VSP_PROGS "/libplug_drv.so", "plug_drv_alloc_free", "4", 1);
}

/* ---- 4: two runtimes ---- */

static void two_runtimes(const char *mode)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_two_runtimes", VSP_PROGS "/libplug12.so", VSP_PROGS "/libplug13.so", mode,
                          NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_eq(plain.code, 0, "without the shim each plugin reaches its own runtime: %s%s", plain.out, plain.err);
    cr_assert_not_null(strstr(plain.out, "versions 12080 13000\n"), "%s", plain.out);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 3, "1 MiB, 2 MiB and the failed huge one");
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 2);
    cr_assert_eq(s.allocs_ok, 2);
    cr_assert_eq(s.allocs_failed, 1);
    cr_assert_eq(s.oom_events, 1);
}

Test(shim_shapes, two_runtimes_in_one_process_each_reach_their_own, .timeout = 60)
{
    two_runtimes(NULL);
}

Test(shim_shapes, local_runtime_12_is_reached_while_runtime_13_is_global, .timeout = 60)
{
    two_runtimes("global");
}

Test(shim_shapes, another_interposer_preloaded_after_the_shim_still_sees_every_call, .timeout = 60)
{
    TH_SKIP_UNDER("asan", "the sanitizer runtime must come first in LD_PRELOAD, which this test sets itself");
    TH_SKIP_UNDER("tsan", "the sanitizer runtime must come first in LD_PRELOAD, which this test sets itself");
    char *dir = th_tmpdir(), out[4200];
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", dir);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *counter_only[] = {"LD_PRELOAD=" VSP_PROGS "/libcounter.so", NULL};
    const char *both[] = {"LD_PRELOAD=" VSP_SHIM ":" VSP_PROGS "/libcounter.so", out, NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, counter_only, 0, 0), 0);
    cr_assert_eq(th_run(&shim, argv, both, 0, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_str_eq(shim.out, plain.out);
    cr_assert_not_null(strstr(plain.err, "counter: 3 cudaMalloc calls"), "%s", plain.err);
    cr_assert_not_null(strstr(shim.err, "counter: 3 cudaMalloc calls"), "the other interposer is skipped: %s",
                       shim.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 3);
}

/* ---- 5: a driver lookup that returns interposed symbols ---- */

Test(shim_shapes, driver_lookup_returning_exported_symbols_works, .timeout = 60)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VSP_FAKE_GPA_EXPORTS=1", NULL};
    struct run_result usual, plain, shim;
    cr_assert_eq(th_run(&usual, argv, NULL, 0, 0), 0);
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_eq(plain.code, 0);
    cr_assert_str_eq(plain.out, usual.out, "the switch changes nothing without the shim");
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 3);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 5, "4 good frees + 1 bad");
    cr_assert_eq(s.by_api[VSP_API_cudaMallocHost], 1);
    cr_assert_eq(s.by_api[VSP_API_cudaMallocAsync], 1);
    cr_assert_eq(s.frees_failed, 1);
    cr_assert_eq(s.allocs_failed, 0);
    cr_assert_eq(s.by_api[VSP_API_cuMemAlloc_v2] + s.by_api[VSP_API_cuMemFree_v2] + s.by_api[VSP_API_cuMemHostAlloc],
                 0, "driver calls made by the runtime are not recorded");
}

/* ---- 6, 7: libraries that leave the process ---- */

Test(shim_shapes, runtime_that_unloads_driver_after_failed_init_exits_cleanly, .timeout = 60)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_shapes", "noinit", NULL};
    const char *env[] = {"CUDA_VISIBLE_DEVICES=", "VSP_FAKE_UNLOAD_DRIVER=1", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_eq(plain.code, 1);
    cr_assert_str_eq(plain.out, "malloc 100 no CUDA-capable device is detected\n");
    cr_assert_str_eq(plain.err, "");
    cr_assert(only_shim_lines(shim.err), "nothing but the shim's own lines on stderr: %s", shim.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 1);
    cr_assert_eq(s.allocs_failed, 1);
}

Test(shim_shapes, plugin_host_unloading_and_reloading_cuda_plugins, .timeout = 90)
{
    char *dir = th_tmpdir();
    static const char *const modes[] = {"local", "global"};
    for (int m = 0; m < 2; m++) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dir, modes[m]);
        cr_assert_eq(mkdir(sub, 0700), 0);
        const char *argv[] = {VSP_PROGS "/prog_plugin_reload", VSP_PROGS "/libplug13.so", modes[m], NULL};
        const char *env[] = {"VSP_FAKE_UNLOAD_DRIVER=1", NULL};
        struct run_result plain, shim;
        th_run_pair(&plain, &shim, argv, sub, env);
        cr_assert_eq(plain.code, 0, "%s: %s%s", modes[m], plain.out, plain.err);
        cr_assert_not_null(strstr(plain.err, "unloaded plugin=1 runtime=1 driver=1\n"),
                           "%s: without the shim, plugin, runtime and driver really leave the process: %s", modes[m],
                           plain.err);
        struct trace_summary s;
        th_one_trace(sub, &s, NULL, NULL);
        cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 2, "%s: both loads' allocations", modes[m]);
        cr_assert_eq(s.by_api[VSP_API_cudaFree], 2, "%s", modes[m]);
        cr_assert_eq(s.allocs_ok, 2, "%s", modes[m]);
    }
}

/* ---- 8, 9: descriptors ---- */

static void expected_data(char *buf, size_t len, size_t *n_out)
{
    size_t n = 0;
    for (int i = 0; i < 2000 && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "data line %04d of the program's own file\n", i);
    *n_out = n;
}

static void close_range_case(const char *mode)
{
    char *dir = th_tmpdir(), pdata[4200], sdata[4200], out[4200];
    snprintf(pdata, sizeof pdata, "%s/plain.data", dir);
    snprintf(sdata, sizeof sdata, "%s/shim.data", dir);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", dir);
    const char *pargv[] = {VSP_PROGS "/prog_shapes", mode, pdata, NULL};
    const char *sargv[] = {VSP_PROGS "/prog_shapes", mode, sdata, NULL};
    const char *env[] = {out, "VRAMSPY_RING_SIZE=64K", NULL}; /* the log is written many times after */
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, pargv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, sargv, env, 1, 0), 0);
    cr_assert_eq(plain.code, 0, "%s%s", plain.out, plain.err);
    cr_assert_str_eq(plain.out, "datafd 3 4 5 6 7\nbad 0\n", "the program's files reuse descriptors 3 to 7");
    cr_assert(shim.exited, "killed by signal %d: %s", shim.sig, shim.err);
    cr_assert_eq(shim.code, 0, "%s", shim.err);
    cr_assert_str_eq(shim.out, plain.out);
    static char want[200000], got[400000];
    size_t nwant, ngot;
    expected_data(want, sizeof want, &nwant);
    read_file(pdata, got, sizeof got, &ngot);
    cr_assert(ngot == nwant && !memcmp(got, want, nwant), "the plain run wrote the known content");
    struct stat sb;
    cr_assert_eq(stat(sdata, &sb), 0);
    cr_assert_eq((size_t)sb.st_size, nwant, "the data file holds exactly the program's %zu bytes, not %lld", nwant,
                 (long long)sb.st_size);
    read_file(sdata, got, sizeof got, &ngot);
    cr_assert(!memcmp(got, want, nwant), "the data file's bytes are the program's");
    for (int k = 1; k <= 4; k++) {
        char name[4300];
        size_t n = 0;
        for (int i = 0; i < 100; i++)
            n += (size_t)snprintf(want + n, sizeof want - n, "aux file %d line %02d\n", k, i);
        snprintf(name, sizeof name, "%s.%d", pdata, k);
        read_file(name, got, sizeof got, &ngot);
        cr_assert(ngot == n && !memcmp(got, want, n), "the plain run wrote %s", name);
        snprintf(name, sizeof name, "%s.%d", sdata, k);
        read_file(name, got, sizeof got, &ngot);
        cr_assert(ngot == n && !memcmp(got, want, n),
                  "%s (descriptor %d) holds exactly the program's %zu bytes (it has %zu): %.200s", name, 3 + k, n,
                  ngot, got);
    }
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert(s.finalized, "the trace was finalized");
    cr_assert(s.complete, "and read without loss");
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 5010);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 5010);
    cr_assert_eq(s.allocs_ok, 5010);
    cr_assert_eq(s.frees_ok, 5010);
}

Test(shim_shapes, close_range_then_data_file_keeps_data_and_trace, .timeout = 60)
{
    close_range_case("closerange");
}

/* The same, with the calls after close_range made by a new thread: the shim's first unwinder
 * (libunwind 1.6) checked addresses through a pipe it opened at the first stack walk, and when that
 * pipe's descriptors failed it closed both numbers and opened a new pipe — closing the program's
 * own files. The shim's own walker opens nothing; the test stays. */
Test(shim_shapes, close_range_then_new_thread_keeps_program_descriptors, .timeout = 60)
{
    close_range_case("closerange-thread");
}

Test(shim_shapes, stdout_and_stderr_closed_before_first_call, .timeout = 60)
{
    char *dir = th_tmpdir(), pa[4200], pb[4200], sa[4200], sb[4200], out[4200];
    snprintf(pa, sizeof pa, "%s/plain.a", dir);
    snprintf(pb, sizeof pb, "%s/plain.b", dir);
    snprintf(sa, sizeof sa, "%s/shim.a", dir);
    snprintf(sb, sizeof sb, "%s/shim.b", dir);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", dir);
    const char *pargv[] = {VSP_PROGS "/prog_shapes", "closed12", pa, pb, NULL};
    const char *sargv[] = {VSP_PROGS "/prog_shapes", "closed12", sa, sb, NULL};
    const char *env[] = {out, "VRAMSPY_RING_SIZE=64K", NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, pargv, NULL, 0, 0), 0);
    cr_assert_eq(th_run(&shim, sargv, env, 1, 0), 0);
    cr_assert_eq(plain.code, 0);
    cr_assert(shim.exited, "killed by signal %d", shim.sig);
    cr_assert_eq(shim.code, 0, "exit %d (3: the program's write to fd 1 or 2 failed: they are not its files)",
                 shim.code);
    char buf[65536];
    size_t n;
    read_file(pa, buf, sizeof buf, &n);
    cr_assert_str_eq(buf, "text for file A\n", "without the shim the files are fds 1 and 2");
    read_file(pb, buf, sizeof buf, &n);
    cr_assert_str_eq(buf, "text for file B\n");
    read_file(sa, buf, sizeof buf, &n);
    cr_assert(n == 16 && !strcmp(buf, "text for file A\n"), "file A holds exactly its text (%zu bytes): %.300s", n,
              buf);
    read_file(sb, buf, sizeof buf, &n);
    cr_assert(n == 16 && !strcmp(buf, "text for file B\n"), "file B holds exactly its text (%zu bytes): %.300s", n,
              buf);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert(s.complete);
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 3020);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 3020);
    cr_assert_eq(s.allocs_ok, 3020);
}

/* ---- 10: a blocking free ---- */

Test(shim_shapes, blocking_free_does_not_stall_other_threads, .timeout = 240)
{
    const uint64_t size = 3 * MiB + 512;
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {VSP_PROGS "/prog_blockfree", "3146240", NULL};
    const char *env[] = {"VSP_FAKE_BLOCK_FREE_SIZE=3146240", "VRAMSPY_RING_SIZE=64K", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_eq(plain.code, 0, "%s%s", plain.out, plain.err);
    cr_assert_str_eq(plain.out, "a_malloc 0 a_free 0 b_errors 0 last 0\n");
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.events, 100003, "every event: 50,000 pairs, A's two calls, B's last allocation");
    cr_assert_eq(s.by_api[VSP_API_cudaMalloc], 50002);
    cr_assert_eq(s.by_api[VSP_API_cudaFree], 50001);
    cr_assert_eq(s.allocs_ok, 50002);
    cr_assert_eq(s.frees_ok, 50001);
    cr_assert_eq(s.live_count, 1, "in trace order every free follows its allocation");
    cr_assert_eq(s.live_bytes, size);
    cr_assert(s.complete);
    json_t *j = th_report_json(trace);
    cr_assert_eq(th_findings_of(j, "invalid_free", NULL, NULL), 0, "no invalid or double free");
    int64_t count, bytes;
    th_findings_of(j, "leak", &count, &bytes);
    cr_assert_eq(count, 1, "exactly one leak: B's last allocation");
    cr_assert_eq(bytes, (int64_t)size);
    json_decref(j);
}

/* ---- 11, 12: signals and limits ---- */

static void pipe_case(const char *mode, const char *const *extra)
{
    TH_SKIP_UNDER("tsan", "shell pipelines cannot start with the ThreadSanitizer runtime preloaded");
    char *dir = th_tmpdir(), cmd[4400], out[4200];
    snprintf(cmd, sizeof cmd, "'%s/prog_shapes' %s 2>&1 | head -1; echo \"status=${PIPESTATUS[0]}\"", VSP_PROGS,
             mode);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", dir);
    const char *argv[] = {"/bin/bash", "-c", cmd, NULL};
    const char *env[8] = {out};
    int n = 1;
    for (int i = 0; extra && extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, extra, 0, 0), 0);
    cr_assert_str_eq(plain.out, "first line\nstatus=0\n", "%s: without the shim: %s", mode, plain.err);
    cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
    cr_assert_str_eq(shim.out, "first line\nstatus=0\n", "%s: the program's own status (141: SIGPIPE); %s", mode,
                     shim.err);
}

Test(shim_shapes, exit_summary_to_closed_pipe_does_not_kill_program, .timeout = 60)
{
    pipe_case("pipe", NULL);
}

Test(shim_shapes, oom_breakdown_to_closed_pipe_does_not_kill_program, .timeout = 60)
{
    const char *env[] = {"VSP_FAKE_DEVICE_MEM=64M", NULL};
    pipe_case("pipe-oom", env);
}

/* Lines of err that are the shim's warning about the file size limit. */
static int fsize_warnings(const char *err)
{
    int n = 0;
    char line[2048];
    for (const char *p = err; *p;) {
        size_t l = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(l < sizeof line ? l : sizeof line - 1), p);
        if (strstr(line, "vramspy") &&
            (strstr(line, "RLIMIT_FSIZE") || strcasestr(line, "file size limit") || strstr(line, "ulimit -f")))
            n++;
        p += l;
        if (*p)
            p++;
    }
    return n;
}

Test(shim_shapes, fsize_limit_below_trace_size_never_raises_sigxfsz, .timeout = 120)
{
    TH_SKIP_UNDER("tsan", "the shell cannot start with the ThreadSanitizer runtime preloaded");
    char *dir = th_tmpdir(), cmd[4400];
    /* bash's unit for ulimit -f is 1024 bytes: 1 MiB */
    snprintf(cmd, sizeof cmd, "ulimit -f 1024 && exec '%s/prog_shapes' many 100000", VSP_PROGS);
    const char *argv[] = {"/bin/bash", "-c", cmd, NULL};
    struct run_result plain, shim;
    cr_assert_eq(th_run(&plain, argv, NULL, 0, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_str_eq(plain.out, "done 100000 bad 0\n");
    static const char *const rings[] = {NULL, "VRAMSPY_RING_SIZE=64K"}; /* 4 MiB default, above the limit */
    for (int k = 0; k < 2; k++) {
        char sub[4200], out[4300];
        snprintf(sub, sizeof sub, "%s/run%d", dir, k);
        cr_assert_eq(mkdir(sub, 0700), 0);
        snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", sub);
        const char *env[] = {out, rings[k], NULL};
        const char *which = rings[k] ? rings[k] : "default ring";
        cr_assert_eq(th_run(&shim, argv, env, 1, 0), 0);
        cr_assert(shim.exited, "%s: killed by signal %d (%s)", which, shim.sig, strsignal(shim.sig));
        cr_assert_eq(shim.code, 0, "%s: %s", which, shim.err);
        cr_assert_str_eq(shim.out, plain.out, "%s", which);
        char paths[8][4096];
        int n = th_list_traces(sub, paths, 8);
        for (int i = 0; i < n; i++) {
            struct stat sb;
            cr_assert_eq(stat(paths[i], &sb), 0);
            cr_assert_leq(sb.st_size, 1 << 20, "%s: %s is %lld bytes, above the 1 MiB limit", which, paths[i],
                          (long long)sb.st_size);
            struct trace_summary s;
            th_summarize(paths[i], &s, NULL);
            cr_assert(s.ok, "%s: %s is readable: %s", which, paths[i], s.error);
        }
        cr_assert_eq(fsize_warnings(shim.err), 1, "%s: one warning about the file size limit: %s", which, shim.err);
    }
}

/* ---- 13: setuid ---- */

static int in_path(const char *prog, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin:/usr/sbin:/sbin";
    while (*path) {
        size_t l = strcspn(path, ":");
        snprintf(out, len, "%.*s/%s", (int)l, path, prog);
        if (l && access(out, X_OK) == 0)
            return 1;
        path += l;
        if (*path)
            path++;
    }
    return 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, mode);
    char buf[65536];
    ssize_t n;
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            rc = -1;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = -1;
    return rc;
}

Test(shim_shapes, setuid_process_passes_through_and_creates_nothing, .timeout = 60)
{
    TH_SKIP_UNDER("asan", "a secure-mode process ignores LD_PRELOAD, so the sanitizer runtime the instrumented "
                          "shim needs cannot come first");
    TH_SKIP_UNDER("tsan", "a secure-mode process ignores LD_PRELOAD, so the sanitizer runtime the instrumented "
                          "shim needs cannot come first");
    if (geteuid() != 0)
        cr_skip_test("not root: cannot make a setuid-root copy of the program");
    char setpriv[4096];
    if (!in_path("setpriv", setpriv, sizeof setpriv))
        cr_skip_test("no setpriv on PATH to run the program as nobody");
    char *dir = th_tmpdir(), prog[4200], tdir[4200], out[4300], metrics[4300], mpath[4300], check[16384];
    struct statvfs vfs;
    cr_assert_eq(statvfs(dir, &vfs), 0);
    if (vfs.f_flag & ST_NOSUID)
        cr_skip_test("%s is on a nosuid filesystem", dir);
    /* nobody must reach the shim and the fakes (the RPATH) and the copy */
    cr_assert_eq(chmod(dir, 0755), 0);
    snprintf(check, sizeof check, "test -r '%s' && test -r '%s/libcudart.so.13' && test -r '%s/libcuda.so.1' && "
             "test -x '%s'", VSP_SHIM, VSP_FAKES, VSP_FAKES, dir);
    const char *cargv[] = {setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", check, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, cargv, NULL, 0, 0), 0);
    if (r.code != 0)
        cr_skip_test("the build tree (%s) or %s is not readable by nobody: %s", VSP_BUILD_DIR, dir, r.err);

    /* the same program, not setuid, as root: the CUDA results to expect */
    snprintf(tdir, sizeof tdir, "%s/plain-run", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/t.%%p.trace", tdir);
    const char *pargv[] = {VSP_PROGS "/prog_secure", NULL};
    const char *penv[] = {out, NULL};
    struct run_result plain;
    cr_assert_eq(th_run(&plain, pargv, penv, 0, 0), 0);
    cr_assert_eq(plain.code, 0, "%s", plain.err);
    cr_assert_eq(strncmp(plain.out, "secure 0\n", 9), 0, "%s", plain.out);

    snprintf(prog, sizeof prog, "%s/prog_secure", dir);
    cr_assert_eq(copy_file(VSP_PROGS "/prog_secure", prog, 0755), 0);
    cr_assert_eq(chown(prog, 0, 0), 0);
    cr_assert_eq(chmod(prog, 04755), 0);
    snprintf(out, sizeof out, "VRAMSPY_OUT=%s/secure.%%p.trace", dir);
    snprintf(metrics, sizeof metrics, "VRAMSPY_METRICS=%s/m.prom", dir);
    snprintf(mpath, sizeof mpath, "%s/m.prom", dir);
    const char *sargv[] = {setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", prog, NULL};
    const char *senv[] = {out, metrics, "VRAMSPY_METRICS_INTERVAL=50", NULL};
    struct run_result shim;
    cr_assert_eq(th_run(&shim, sargv, senv, 0, 0), 0);
    if (!strncmp(shim.out, "secure 0\n", 9))
        cr_skip_test("AT_SECURE is 0 for the setuid copy in %s (mounted nosuid, or setuid ignored here)", dir);
    cr_assert_eq(strncmp(shim.out, "secure 1\n", 9), 0, "the setuid copy ran in secure mode: exit %d sig %d: %s%s",
                 shim.code, shim.sig, shim.out, shim.err);
    cr_assert(shim.exited && shim.code == 0, "exit %d sig %d: %s", shim.code, shim.sig, shim.err);
    cr_assert_str_eq(shim.out + 9, plain.out + 9, "the CUDA results are those of the plain run");
    char paths[4][4096];
    cr_assert_eq(th_list_traces(dir, paths, 4), 0, "no trace file is created");
    cr_assert_neq(access(mpath, F_OK), 0, "no metrics file is created");
    cr_assert_null(strstr(shim.err, "vramspy"), "nothing from vramspy on stderr: %s", shim.err);
}

/* ---- 14: configuration ---- */

Test(shim_shapes, process_without_cuda_is_silent_whatever_the_environment, .timeout = 60)
{
    char *dir = th_tmpdir();
    cr_assert_eq(chdir(dir), 0); /* whatever a confused shim might create lands here */
    const char *env[] = {"VRAMSPY_DEPTH=abc", "VRAMSPY_OUT=%z", "VRAMSPY_RING_SIZE=zz", NULL};
    const char *sh[] = {"/bin/sh", "-c", "true", NULL};
    const char *ls[] = {"/bin/ls", "/", NULL};
    struct run_result plain, r;
    cr_assert_eq(th_run(&r, sh, env, 1, 0), 0);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "", "sh -c true: nothing on stderr");
    th_run_both(&plain, &r, ls, env, 0);
    cr_assert_str_eq(r.err, "", "ls /: nothing on stderr");
    char paths[4][4096];
    cr_assert_eq(th_list_traces(dir, paths, 4), 0);
}

Test(shim_shapes, bad_out_pattern_warns_once_naming_the_path_used, .timeout = 60)
{
    char *dir = th_tmpdir();
    cr_assert_eq(chdir(dir), 0); /* the default pattern is relative */
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {"VRAMSPY_OUT=%z", NULL};
    struct run_result plain, r;
    th_run_both(&plain, &r, argv, env, 0);
    cr_assert_eq(lines_with(r.err, "VRAMSPY_OUT"), 1, "one warning about VRAMSPY_OUT: %s", r.err);
    const char *w = strstr(r.err, "VRAMSPY_OUT");
    while (w > r.err && w[-1] != '\n')
        w--;
    char line[2048], want[128];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(w, "\n"), w);
    snprintf(want, sizeof want, "vramspy.prog_runtime.%d.trace", (int)r.pid);
    const char *used = strstr(line, want);
    cr_assert_not_null(used, "the warning names the path used (%s): %s", want, line);
    /* the path named: the word around "vramspy.prog_runtime.PID.trace" */
    while (used > line && used[-1] != ' ' && used[-1] != '\'' && used[-1] != '"')
        used--;
    char word[2048];
    snprintf(word, sizeof word, "%.*s", (int)strcspn(used, " '\""), used);
    cr_assert_null(strchr(word, '%'), "no pattern escape left in the path named: %s", word);
    struct trace_summary s;
    th_summarize(want, &s, NULL);
    cr_assert(s.ok, "the trace is where the warning said: %s", s.error);
}

Test(shim_shapes, overlong_out_pattern_warns, .timeout = 60)
{
    char *dir = th_tmpdir();
    cr_assert_eq(chdir(dir), 0);
    static char out[6000];
    int n = snprintf(out, sizeof out, "VRAMSPY_OUT=%s/", dir);
    memset(out + n, 'a', 5000 - (strlen(dir) + 1)); /* the value is 5,000 characters */
    out[n + 5000 - (strlen(dir) + 1)] = 0;
    cr_assert_eq(strlen(out + 12), 5000);
    const char *argv[] = {VSP_PROGS "/prog_runtime", "basic", NULL};
    const char *env[] = {out, NULL};
    struct run_result plain, r;
    th_run_both(&plain, &r, argv, env, 0);
    cr_assert_gt(lines_with(r.err, "VRAMSPY_OUT"), 0, "a 5,000-character VRAMSPY_OUT is warned about: %s", r.err);
    cr_assert_eq(lines_with(r.err, "VRAMSPY_OUT"), 1, "once: %s", r.err);
}

/* ---- 15, 16 ---- */

Test(shim_shapes, zero_byte_allocation_is_no_leak, .timeout = 60)
{
    char *dir = th_tmpdir(), trace[4096];
    const char *argv[] = {VSP_PROGS "/prog_shapes", "zero", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_str_eq(plain.out, "malloc0 0 null 1\nfree 0\n", "the runtime's zero-byte cudaMalloc gives NULL");
    cr_assert_not_null(strstr(shim.err, "live at exit: 0 allocations"), "%s", shim.err);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    const char *rargv[] = {REPORT, "--fail-on", "leak", trace, NULL};
    struct run_result rep;
    cr_assert_eq(th_run(&rep, rargv, NULL, 0, 1), 0);
    cr_assert_eq(rep.code, 0, "no leak finding: %s%s", rep.out, rep.err);
    json_t *j = th_report_json(trace);
    cr_assert_eq(th_findings_of(j, "leak", NULL, NULL), 0);
    json_decref(j);
}

Test(shim_shapes, raw_fork_child_gets_its_own_trace, .timeout = 60)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_shapes", "rawfork", NULL};
    struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert_str_eq(plain.out, "child 0\n");
    uint64_t probes[] = {1000, 2000, 3000, 0};
    struct trace_summary ps, cs, *parent = &ps, *child = &cs;
    th_fork_traces(dir, (uint32_t)shim.pid, probes, parent, child);
    cr_assert_eq(parent->count_size[0], 3);
    cr_assert_eq(parent->count_size[1], 0, "the child's allocations are not in the parent's trace");
    cr_assert_eq(parent->count_size[2], 2);
    cr_assert_eq(parent->by_api[VSP_API_cudaMalloc], 5);
    cr_assert_eq(child->count_size[1], 5, "the child's allocations are in its own trace");
    cr_assert_eq(child->count_size[0] + child->count_size[2], 0);
    cr_assert(parent->complete);
}
