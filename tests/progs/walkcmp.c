/* Walker comparison, C: the shim's stack walker against libunwind on the same stacks (see
 * walkcmp.h). Built twice by tests/tests.mk: -O0 with frame pointers, -O2 without. Scenarios:
 * plain calls, through a shared library, a 100-frame recursion, through libc (qsort), alloca,
 * a stack-realigning function, code without unwind tables, and a second thread.
 * `walkcmp_c_O2 bench DEPTH ITERS` times both walkers instead. */
#define _GNU_SOURCE
#include <alloca.h>
#include <pthread.h>

#include "walkcmp.h"

int walkcmp_lib_call(int depth, void (*cb)(void));
int walkcmp_nocfi_call(int depth, void (*cb)(void));

#define NOINLINE __attribute__((noinline))
static volatile int sink;

NOINLINE static void leaf_direct(void) { wc_compare("direct"); sink++; }
NOINLINE static void mid_direct(void) { leaf_direct(); sink++; }
NOINLINE static void top_direct(void) { mid_direct(); sink++; }

NOINLINE static void cb_shlib(void) { wc_compare("shlib"); sink++; }
NOINLINE static void cb_nocfi(void) { wc_compare("nocfi"); sink++; }

static const char *rec_name;
static void (*rec_leaf)(void);
NOINLINE static int rec(int n)
{
    if (n <= 0) {
        if (rec_leaf)
            rec_leaf();
        else
            wc_compare(rec_name);
        return 0;
    }
    int r = rec(n - 1);
    sink += r; /* no tail call, no accumulator loop */
    return r + 1;
}

static int qsort_compared;
static int cmp_int(const void *a, const void *b)
{
    if (!qsort_compared++)
        wc_compare("qsort");
    return *(const int *)a - *(const int *)b;
}

NOINLINE static void with_alloca(int n)
{
    char *p = alloca((size_t)n);
    memset(p, 1, (size_t)n);
    wc_compare("alloca");
    sink += p[n - 1];
}

/* An over-aligned local and a variable-length array: gcc realigns through a DRAP register, so
 * the CFI is r10-based in the prologue, then DW_CFA_def_cfa_expression (CFA = *(rbp - 8)) and
 * DW_CFA_expression for rbp (saved at rbp + 0) at the call. */
NOINLINE static void realigned(int n)
{
    char vla[n];
    char buf[64] __attribute__((aligned(64)));
    memset(buf, 2, sizeof buf);
    memset(vla, 3, (size_t)n);
    wc_compare("realign");
    sink += buf[3] + vla[n - 1];
}

NOINLINE static void cb_shlib_deep(void) { wc_compare("shlib_recursion"); sink++; }
NOINLINE static void leaf_shlib_in_rec(void) { walkcmp_lib_call(5, cb_shlib_deep); sink++; }

/* Siblings: the same leaf through two callers with the same frame size, so the memo of one walk
 * matches the next at the leaf's levels (same rsp, same return address into the leaf's caller's
 * caller... up to the sibling) and must notice that the sibling's return address differs. */
NOINLINE static void sib_leaf(void) { wc_compare("siblings"); sink++; }
NOINLINE static void sib_a(void) { sib_leaf(); sink++; }
NOINLINE static void sib_b(void) { sib_leaf(); sink += 2; }
/* The same leaf under frames of different sizes (alloca above it): the memo's levels sit at other
 * depths than the walk's. */
NOINLINE static void shifted(int n)
{
    char *p = alloca((size_t)n);
    memset(p, 1, (size_t)n);
    top_direct();
    sink += p[n - 1];
}
static int bench_iters;
NOINLINE static void bench_leaf(void) { wc_bench(bench_iters); sink++; }

static void *thread_main(void *arg)
{
    (void)arg;
    mid_direct(); /* "direct" again, on a thread's stack */
    rec_name = "thread_recursion";
    rec(20);
    return NULL;
}

int main(int argc, char **argv)
{
    wc_setup();
    if (argc >= 2 && !strcmp(argv[1], "bench")) {
        int depth = argc >= 3 ? atoi(argv[2]) : 35, iters = argc >= 4 ? atoi(argv[3]) : 100000;
        /* main, __libc_start_call_main, __libc_start_main, _start, the leaf and wc_bench: the
         * recursion adds the rest */
        bench_iters = iters;
        rec_leaf = bench_leaf;
        rec(depth > 6 ? depth - 6 : 0);
        return 0;
    }
    top_direct();
    walkcmp_lib_call(3, cb_shlib);
    rec_name = "recursion100";
    rec(100);
    rec_leaf = leaf_shlib_in_rec;
    rec(10);
    rec_leaf = NULL;
    int v[16];
    for (int i = 0; i < 16; i++)
        v[i] = 16 - i;
    qsort(v, 16, sizeof *v, cmp_int);
    with_alloca(100 + (argc & 1) * 300);
    realigned(40 + (argc & 1) * 8);
    walkcmp_nocfi_call(2, cb_nocfi);
    for (int k = 0; k < 3; k++) {
        sib_a();
        sib_b();
        with_alloca(64 + 200 * k);
        realigned(24 + 16 * k);
        shifted(32 + 96 * k);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) == 0)
        pthread_join(t, NULL);
    return wc_finish();
}
