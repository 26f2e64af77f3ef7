/* Tests of the shim's stack walker (shim/walk/walker.c). The comparison programs (tests/progs/walkcmp*,
 * C and C++, -O0 with frame pointers and -O2 without) take each stack with libunwind's
 * unw_backtrace and with the walker at the same place and require the two to be identical from
 * the caller's frame outward; here they run and must report every comparison matched. In process:
 * the entry point's frame convention, skip and max, and that garbage registers, a smashed stack
 * or a foreign stack end a walk instead of faulting. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "shim/walk/walker.h"

static void run_walkcmp(const char *prog)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", VSP_PROGS, prog);
    const char *argv[] = {path, NULL};
    struct run_result r;
    cr_assert_eq(th_run(&r, argv, NULL, 0, 0), 0, "%s did not run", path);
    cr_assert(r.exited && r.code == 0, "%s: exit %d signal %d\nstdout:\n%s\nstderr:\n%s", prog, r.code, r.sig,
              r.out, r.err);
    int ok = 0, all = -1;
    const char *line = strstr(r.out, " comparisons matched");
    cr_assert_not_null(line, "%s printed no summary:\n%s", prog, r.out);
    const char *start = line;
    while (start > r.out && start[-1] != '\n')
        start--;
    cr_assert_eq(sscanf(start, "%d of %d", &ok, &all), 2);
    cr_assert(all >= 7 && ok == all, "%s: %d of %d matched\n%s\n%s", prog, ok, all, r.out, r.err);
}

Test(walker, c_O0_frame_pointers_matches_libunwind) { run_walkcmp("walkcmp_c_O0"); }
Test(walker, c_O2_omit_frame_pointer_matches_libunwind) { run_walkcmp("walkcmp_c_O2"); }
Test(walker, cpp_O0_frame_pointers_matches_libunwind) { run_walkcmp("walkcmp_cpp_O0"); }
Test(walker, cpp_O2_omit_frame_pointer_matches_libunwind) { run_walkcmp("walkcmp_cpp_O2"); }

/* ---- in process ---- */
static volatile int sink;
static uint64_t ret_into_mid;
static uint64_t frames[64];
static unsigned nframes;

__attribute__((noinline)) static void leaf(unsigned max, unsigned skip)
{
    nframes = vsp_walk_stack(frames, max, skip);
    __asm__ __volatile__("" ::: "memory"); /* no tail call */
}

__attribute__((noinline)) static void mid(unsigned max, unsigned skip)
{
    ret_into_mid = 0;
    leaf(max, skip);
    sink++;
}

__attribute__((noinline)) static void top(unsigned max, unsigned skip)
{
    mid(max, skip);
    sink++;
}

/* the return addresses the walk must show, taken by the functions themselves */
__attribute__((noinline)) static void mark_mid(void) { ret_into_mid = (uint64_t)(uintptr_t)__builtin_return_address(0); }
__attribute__((noinline)) static void mid_marked(void) { mark_mid(); sink++; }

static int in_function(uint64_t addr, void *fn)
{
    Dl_info a, b;
    return dladdr((void *)(uintptr_t)addr, &a) && dladdr(fn, &b) && a.dli_saddr == b.dli_saddr;
}

Test(walker, frame_zero_is_in_the_caller_then_outward)
{
    top(64, 0);
    cr_assert_geq(nframes, 4, "a walk from a test function has at least leaf, mid, top and the runner");
    cr_assert(in_function(frames[0], (void *)leaf), "frames[0] is the return address into leaf");
    cr_assert(in_function(frames[1], (void *)mid), "frames[1] is in mid");
    cr_assert(in_function(frames[2], (void *)top), "frames[2] is in top");
    mid_marked();
    cr_assert(in_function(ret_into_mid, (void *)mid_marked));
}

Test(walker, skip_and_max)
{
    top(64, 0);
    uint64_t all[64];
    unsigned n = nframes;
    memcpy(all, frames, sizeof all);
    top(64, 1);
    cr_assert_eq(nframes, n - 1);
    cr_assert_eq(frames[0], all[1], "skip drops from the front");
    cr_assert_eq(frames[1], all[2]);
    top(2, 0);
    cr_assert_eq(nframes, 2);
    cr_assert_eq(frames[0], all[0]);
    cr_assert_eq(frames[1], all[1]);
    top(0, 0);
    cr_assert_eq(nframes, 0);
    top(64, 1000);
    cr_assert_eq(nframes, 0, "skipping more than there is leaves nothing");
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Registers and stack contents of every kind of wrong: the walk must end, without a fault, and
 * never report more than it was asked for. */
Test(walker, garbage_registers_and_smashed_stack_do_not_fault)
{
    uint64_t fake[512]; /* a "stack" of garbage above the walk's starting point */
    uint64_t local_top = (uint64_t)(uintptr_t)&fake[511];
    uint64_t text = (uint64_t)(uintptr_t)&printf, mine = (uint64_t)(uintptr_t)&top;
    uint64_t out[32];
    for (int iter = 0; iter < 20000; iter++) {
        for (int i = 0; i < 512; i++) {
            switch (rnd() % 6) {
            case 0: fake[i] = rnd(); break;
            case 1: fake[i] = local_top - (rnd() % 8192); break;             /* into this stack */
            case 2: fake[i] = text + (rnd() % 65536) - 32768; break;         /* into libc's code */
            case 3: fake[i] = mine + (rnd() % 4096) - 2048; break;           /* into ours */
            case 4: fake[i] = local_top + (rnd() % (1u << 20)); break;       /* above the stack top, maybe */
            default: fake[i] = 0; break;
            }
        }
        uint64_t rsp = (uint64_t)(uintptr_t)&fake[rnd() % 512];
        uint64_t rip = fake[rnd() % 512] | (rnd() % 3 == 0 ? text : 0);
        uint64_t rbp = fake[rnd() % 512];
        unsigned max = 1 + (unsigned)(rnd() % 32);
        unsigned n = vsp_walk_from_regs(out, max, 0, rip ? rip : 1, rsp, rbp);
        cr_assert_leq(n, max);
        cr_assert_geq(n, 1, "the first frame is the given rip");
    }
}

Test(walker, a_foreign_stack_gives_just_the_pc)
{
    uint64_t *heap = calloc(4096, sizeof *heap);
    cr_assert_not_null(heap);
    for (int i = 0; i < 4096; i++)
        heap[i] = (uint64_t)(uintptr_t)&heap[i < 4095 ? i + 1 : i];
    uint64_t out[8];
    unsigned n = vsp_walk_from_regs(out, 8, 0, (uint64_t)(uintptr_t)&top, (uint64_t)(uintptr_t)&heap[16],
                                    (uint64_t)(uintptr_t)&heap[32]);
    cr_assert_eq(n, 1, "a walk starting off the thread's stack reads nothing");
    cr_assert_eq(out[0], (uint64_t)(uintptr_t)&top);
    free(heap);
}

Test(walker, same_stack_after_modules_changed)
{
    uint64_t before[64];
    unsigned n = 0;
    struct vsp_walker_stats s[3];
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            vsp_walker_modules_changed(); /* every cached rule is stale now: all recomputed */
        vsp_walker_get_stats(&s[round]);
        top(64, 0);
        if (round == 0) {
            n = nframes;
            memcpy(before, frames, sizeof before);
            continue;
        }
        cr_assert_eq(nframes, n);
        for (unsigned i = 0; i < n; i++) /* frame 3 is the call site in this loop, which the compiler may peel */
            cr_assert(i == 3 || frames[i] == before[i], "frame %u", i);
    }
    struct vsp_walker_stats end;
    vsp_walker_get_stats(&end);
    cr_assert_geq(s[2].rule_misses - s[1].rule_misses, n - 1, "the rules were computed again");
    cr_assert_leq(end.rule_misses - s[2].rule_misses, 1, "and cached again (but for frame 3, maybe)");
}

/* A library loaded after the module table was built: the walk notices it (dlpi_adds) and unwinds
 * through it; unloaded and loaded again, still. */
static unsigned lib_frames_seen;
static const char *lib_path_part = "libwalkcmp_O2.so";

__attribute__((noinline)) static void walk_in_lib_cb(void)
{
    uint64_t f[64];
    unsigned n = vsp_walk_stack(f, 64, 0);
    lib_frames_seen = 0;
    int past_lib = 0;
    for (unsigned i = 0; i < n; i++) {
        Dl_info di;
        if (dladdr((void *)(uintptr_t)f[i], &di) && di.dli_fname && strstr(di.dli_fname, lib_path_part))
            lib_frames_seen++;
        else if (lib_frames_seen)
            past_lib = 1;
    }
    if (!past_lib)
        lib_frames_seen = 0; /* the walk must get out of the library, back into this program */
    __asm__ __volatile__("" ::: "memory");
}

Test(walker, a_library_loaded_later_is_walked_through)
{
    top(64, 0); /* the module table exists before the library comes */
    for (int round = 0; round < 2; round++) {
        void *h = dlopen(VSP_PROGS "/libwalkcmp_O2.so", RTLD_NOW | RTLD_LOCAL);
        cr_assert_not_null(h, "%s", dlerror());
        int (*call)(int, void (*)(void)) = (int (*)(int, void (*)(void)))dlsym(h, "walkcmp_lib_call");
        cr_assert_not_null(call);
        call(3, walk_in_lib_cb);
        cr_assert_eq(lib_frames_seen, 4, "round %d: the library's 4 frames, then out of it", round);
        dlclose(h);
        vsp_walker_modules_changed(); /* what the shim does on dlclose */
    }
}

/* Walks on several threads while the module table is rebuilt and the rule cache invalidated under
 * them: every walk gives the same stack as the first. */
static int stop_churn;

__attribute__((noinline)) static void *walker_thread(void *arg)
{
    (void)arg;
    uint64_t ref[64], f[64];
    unsigned nref = 0;
    long bad = 0;
    for (int i = 0; i < 20000; i++) {
        unsigned n = vsp_walk_stack(f, 64, 0); /* one call site: the same stack every time */
        if (i == 0) {
            nref = n;
            memcpy(ref, f, sizeof ref);
        } else if (n != nref || memcmp(f, ref, n * sizeof *f)) {
            bad++;
        }
    }
    return (void *)bad;
}

static void *churn_thread(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_churn, __ATOMIC_RELAXED)) { /* relaxed: a stop flag, orders nothing */
        void *h = dlopen(VSP_PROGS "/libwalkcmp_O0.so", RTLD_NOW | RTLD_LOCAL);
        if (h)
            dlclose(h);
        vsp_walker_modules_changed();
    }
    return NULL;
}

Test(walker, concurrent_walks_while_modules_change)
{
    pthread_t w[4], c;
    cr_assert_eq(pthread_create(&c, NULL, churn_thread, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&w[i], NULL, walker_thread, NULL), 0);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(w[i], &r);
        bad += (long)r;
    }
    __atomic_store_n(&stop_churn, 1, __ATOMIC_RELAXED);
    pthread_join(c, NULL);
    cr_assert_eq(bad, 0, "%ld walks differed from their thread's first", bad);
}
