/* Integration tests of the stack walker in hostile process shapes (issue 20, items 3, 8 and 9):
 * a program that makes its own unwind tables unreadable, a coroutine on a stack of its own, and a
 * library loaded after 2,099 others. Each program runs with and without the shim where the output
 * says something; then the report's leak stacks are read for the frames that must be there. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define REPORT VSP_BUILD_DIR "/vramspy-report"

/* The stack of the leak of `bytes` in the report of the one trace in dir, as "function@module"
 * lines (module: the path's last component), innermost first, into out. */
static void leak_stack(const char *dir, uint64_t bytes, char *out, size_t len)
{
    char trace[4096];
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, trace);
    static struct run_result r;
    const char *argv[] = {REPORT, "--format", "json", trace, NULL};
    cr_assert_eq(th_run(&r, argv, NULL, 0, 1), 0);
    json_t *j = th_json(r.out);
    size_t i, k, n = 0;
    json_t *f, *frame;
    out[0] = 0;
    json_array_foreach(json_object_get(j, "findings"), i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        if (!kind || strcmp(kind, "leak") || (uint64_t)json_integer_value(json_object_get(f, "bytes")) != bytes)
            continue;
        json_array_foreach(json_object_get(f, "stack"), k, frame)
        {
            const char *fn = json_string_value(json_object_get(frame, "function"));
            const char *mod = json_string_value(json_object_get(frame, "module"));
            const char *base = mod && strrchr(mod, '/') ? strrchr(mod, '/') + 1 : mod;
            int w = snprintf(out + n, len - n, "%s@%s\n", fn ? fn : "?", base ? base : "?");
            if (w < 0 || (size_t)w >= len - n)
                break;
            n += (size_t)w;
        }
    }
    json_decref(j);
}

/* One line of the stack text that names fn@mod; its position (0 = innermost), or -1. */
static int frame_at(const char *stack, const char *fn_at_mod)
{
    int pos = 0;
    size_t l = strlen(fn_at_mod);
    for (const char *line = stack; *line; pos++) {
        if (!strncmp(line, fn_at_mod, l) && line[l] == '\n')
            return pos;
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return -1;
}

/* Run argv without and with the shim (same exit status and stdout, see th_run_pair), the program
 * succeeding on its own; the trace's directory, and the plain run's stdout in *plain_out. */
static char *run_both_ok(const char *const *argv, const char **plain_out)
{
    char *dir = th_tmpdir();
    static struct run_result plain, shim;
    th_run_pair(&plain, &shim, argv, dir, NULL);
    cr_assert(plain.exited && plain.code == 0, "the program itself: %s %s", plain.out, plain.err);
    if (plain_out)
        *plain_out = plain.out;
    return dir;
}

Test(walker_shapes, program_that_protects_its_own_eh_frame_hdr_runs_unchanged, .timeout = 60)
{
    const char *argv[] = {VSP_PROGS "/prog_eh_protect", NULL}, *out;
    char *dir = run_both_ok(argv, &out);
    cr_assert(strstr(out, "8 allocations ok, 0 failed"), "%s", out);
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, NULL);
    cr_assert(s.complete, "the trace is complete");
    cr_assert_eq(s.allocs_ok, 9, "every allocation recorded");
    cr_assert_eq(s.frees_ok, 9);
}

Test(walker_shapes, leak_in_a_ucontext_coroutine_names_the_coroutine_function, .timeout = 60)
{
    const char *argv[] = {VSP_PROGS "/prog_coroutine", NULL};
    char *dir = run_both_ok(argv, NULL);
    char stack[8192];
    leak_stack(dir, 3u << 20, stack, sizeof stack);
    cr_assert_eq(frame_at(stack, "coroutine_leaks@prog_coroutine"), 0, "the leak's stack:\n%s", stack);
    cr_assert_eq(frame_at(stack, "coroutine_body@prog_coroutine"), 1, "and its caller, on the coroutine's stack:\n%s",
                 stack);
}

Test(walker_shapes, library_loaded_after_2099_others_keeps_the_frame_that_called_it, .timeout = 120)
{
    const char *argv[] = {VSP_PROGS "/prog_many_libs", VSP_PROGS "/many", "2100", NULL};
    char *dir = run_both_ok(argv, NULL);
    char stack[8192];
    leak_stack(dir, 5u << 20, stack, sizeof stack);
    int lib = frame_at(stack, "many_step@libmany_2099.so");
    cr_assert_geq(lib, 0, "the library loaded last is on the leak's stack:\n%s", stack);
    cr_assert_eq(frame_at(stack, "call_into_last_library@prog_many_libs"), lib + 1,
                 "and the frame that called into it follows:\n%s", stack);
}
