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
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "progs/many.h"
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

/* A "stack" that is not the thread's, ending where the mapping ends (the next page PROT_NONE),
 * full of pointers into itself and into code: walked in a checked copy, it ends without a fault
 * (issue 20, item 8: foreign stacks are walked with the same safety as the thread's). */
Test(walker, a_foreign_stack_is_walked_in_a_checked_copy_without_faulting)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect((char *)m + page, (size_t)page, PROT_NONE), 0);
    unsigned words = (unsigned)page / 8;
    uint64_t text = (uint64_t)(uintptr_t)&printf, mine = (uint64_t)(uintptr_t)&top;
    uint64_t out[32];
    for (int iter = 0; iter < 2000; iter++) {
        for (unsigned i = 0; i < words; i++) {
            switch (rnd() % 4) {
            case 0: m[i] = (uint64_t)(uintptr_t)&m[rnd() % words]; break;
            case 1: m[i] = text + (rnd() % 65536) - 32768; break;
            case 2: m[i] = mine + (rnd() % 4096) - 2048; break;
            default: m[i] = (uint64_t)(uintptr_t)m + (uint64_t)page + (rnd() % 4096); break; /* the hole */
            }
        }
        unsigned max = 1 + (unsigned)(rnd() % 32);
        unsigned n = vsp_walk_from_regs(out, max, 0, mine, (uint64_t)(uintptr_t)&m[rnd() % words], m[rnd() % words]);
        cr_assert_leq(n, max);
        cr_assert_geq(n, 1);
        cr_assert_eq(out[0], mine);
    }
    munmap(m, (size_t)page * 2);
}

/* A ucontext coroutine on a 64 KiB stack from malloc: the walk from inside it names its functions
 * (issue 20, item 8; before, a foreign stack gave the pc alone). */
static ucontext_t co_main, co_ctx;
static uint64_t co_frames[64];
static unsigned co_n;

__attribute__((noinline)) static void co_walk(void)
{
    co_n = vsp_walk_stack(co_frames, 64, 0);
    __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static void co_body(void)
{
    co_walk();
    sink++;
}

/* Run body as a ucontext coroutine on a stack of `size` bytes from malloc, to its end. */
static void run_coroutine(void (*body)(void), size_t size)
{
    top(64, 0); /* the thread's own bounds are known: the coroutine's stack is not inside them */
    void *stack = malloc(size);
    cr_assert_not_null(stack);
    cr_assert_eq(getcontext(&co_ctx), 0);
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = size;
    co_ctx.uc_link = &co_main;
    makecontext(&co_ctx, body, 0);
    cr_assert_eq(swapcontext(&co_main, &co_ctx), 0);
    free(stack);
}

Test(walker, a_coroutine_stack_is_walked)
{
    run_coroutine(co_body, 64 * 1024);
    cr_assert_geq(co_n, 2, "the coroutine's frames, not just the pc (%u)", co_n);
    cr_assert(in_function(co_frames[0], (void *)co_walk));
    cr_assert(in_function(co_frames[1], (void *)co_body), "the walk left the innermost frame");
    struct vsp_walker_stats st;
    vsp_walker_get_stats(&st);
    cr_assert_geq(st.foreign_walks, 1);
}

/* The same, 24 frames of 1 KiB deep in the coroutine: past the walker's first copy of a foreign
 * stack (8 KiB), so it copies more and still reaches the coroutine's entry function. */
__attribute__((noinline)) static void co_deep(int d)
{
    volatile char pad[1024];
    pad[0] = (char)d;
    if (d)
        co_deep(d - 1);
    else
        co_walk();
    sink += pad[0];
}

__attribute__((noinline)) static void co_deep_body(void)
{
    co_deep(24);
    sink++;
}

Test(walker, a_coroutine_stack_deeper_than_the_first_copy_is_walked_to_its_entry)
{
    run_coroutine(co_deep_body, 128 * 1024);
    int body = -1;
    for (unsigned i = 0; i < co_n; i++)
        if (in_function(co_frames[i], (void *)co_deep_body))
            body = (int)i;
    cr_assert_geq(body, 26, "co_walk, the co_deep frames, then co_deep_body (%u frames, body at %d)", co_n, body);
    for (int i = 1; i < body; i++)
        cr_assert(in_function(co_frames[i], (void *)co_deep), "frame %d is a co_deep", i);
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

/* Issue 20, item 10: a rule cached for a return address, 32,767 unloads later (a 15-bit
 * generation come round again), must not be used for other code loaded at that address. Two
 * builds of one function (tests/progs/libgen.S) differ only in their frame size: the rule cached
 * for the first would read the second's return address from the wrong slot. */
static uint64_t gen_frames[16];
static unsigned gen_n;

__attribute__((noinline)) static void gen_cb(void)
{
    gen_n = vsp_walk_stack(gen_frames, 16, 0);
    __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static void call_gen(void (*gc)(void (*)(void)))
{
    gc(gen_cb);
    sink++;
}

static void (*gen_open(const char *lib, void **h))(void (*)(void))
{
    *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(*h, "%s", dlerror());
    void (*gc)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(*h, "gen_call");
    cr_assert_not_null(gc);
    return gc;
}

Test(walker, a_rule_cached_32767_unloads_ago_is_not_used, .timeout = 120)
{
    void *h;
    void (*ga)(void (*)(void)) = gen_open(VSP_PROGS "/libgen_a.so", &h);
    struct vsp_walker_stats s0, s1;
    call_gen(ga);
    vsp_walker_get_stats(&s0);
    call_gen(ga); /* every rule of this walk is cached, under the current generation */
    vsp_walker_get_stats(&s1);
    cr_assert_leq(s1.rule_misses - s0.rule_misses, 1, "the second walk computed no rule (but for its call site here)");
    cr_assert(gen_n >= 3 && in_function(gen_frames[2], (void *)call_gen));
    uint64_t ra_a = gen_frames[1];
    dlclose(h);
    vsp_walker_modules_changed(); /* what the shim does on every dlclose */
    /* 32,766 more unloads: every 64th a real dlopen/dlclose of the first build, the others only
     * what the shim does on one (hooks_dl.c: forget_unloaded); 32,767 real cycles take 3-10 s */
    for (int i = 1; i < 32767; i++) {
        if (i % 64 == 0) {
            void *t = dlopen(VSP_PROGS "/libgen_a.so", RTLD_NOW | RTLD_LOCAL);
            cr_assert_not_null(t);
            dlclose(t);
        }
        vsp_walker_modules_changed();
    }
    void (*gb)(void (*)(void)) = gen_open(VSP_PROGS "/libgen_b.so", &h);
    cr_assert_eq((uint64_t)(uintptr_t)gb, (uint64_t)(uintptr_t)ga, "the second build is loaded where the first was");
    call_gen(gb);
    cr_assert_eq(gen_frames[1], ra_a, "the same return address");
    cr_assert(gen_n >= 3 && in_function(gen_frames[2], (void *)call_gen),
              "the frame after it is call_gen's (the second build's rule), got %#llx",
              (unsigned long long)gen_frames[2]);
    dlclose(h);
}

/* Issue 22: identical libraries (copies of tests/progs/libmany.so: every function at the same
 * offset, bases page-aligned, so return addresses coincide in their low bits), a call chain across
 * them, walked with 10 and with 1,000 loaded and while others are loaded and unloaded: every walk
 * gives the chain's libraries in order, then the same frames outward. */
#define MANY_DIR VSP_PROGS "/many"
static void *many_h[1200];
static struct many_chain chain;
static uint64_t many_frames[300];
static unsigned many_n;

static void many_load(int upto)
{
    for (int i = 0; i < upto; i++) {
        if (many_h[i])
            continue;
        char path[4096];
        snprintf(path, sizeof path, MANY_DIR "/libmany_%04d.so", i);
        many_h[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        cr_assert_not_null(many_h[i], "%s", dlerror());
    }
}

static void many_leaf(void *arg)
{
    (void)arg;
    many_n = vsp_walk_stack(many_frames, 300, 0);
    __asm__ __volatile__("" ::: "memory");
}

/* A chain through n of the first `loaded` libraries, spread evenly over them. */
static void many_chain_of(int n, int loaded)
{
    chain.n = n;
    chain.leaf = many_leaf;
    for (int i = 0; i < n; i++)
        chain.step[i] = (many_step_fn)dlsym(many_h[(long)i * loaded / n], "many_step");
}

__attribute__((noinline)) static void many_walk(void)
{
    chain.step[0](&chain, 0);
    sink++;
}

/* The walk just taken is right: the chain's libraries innermost first, then many_walk, then the
 * reference tail (ref: the frames after the chain in the first walk, nref of them, at least 3). */
static int many_check(int n, int loaded, const uint64_t *ref, unsigned nref)
{
    if (many_n != (unsigned)n + 1 + nref)
        return 0;
    for (int i = 0; i < n; i++) {
        Dl_info di;
        char want[64];
        snprintf(want, sizeof want, "/libmany_%04d.so", (int)((long)(n - 1 - i) * loaded / n));
        if (!dladdr((void *)(uintptr_t)many_frames[1 + i], &di) || !di.dli_fname || !strstr(di.dli_fname, want))
            return 0;
    }
    /* ref[1] is the call site of many_walk in the test, which differs from call to call */
    return many_frames[1 + n] == ref[0] && memcmp(many_frames + 3 + n, ref + 2, (nref - 2) * sizeof *ref) == 0;
}

static int many_stop;
static void *many_churn(void *arg)
{
    (void)arg;
    for (int k = 0; !__atomic_load_n(&many_stop, __ATOMIC_RELAXED); k++) { /* relaxed: a stop flag */
        char path[4096];
        snprintf(path, sizeof path, MANY_DIR "/libmany_%04d.so", 1000 + k % 100);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h)
            dlclose(h);
        vsp_walker_modules_changed();
    }
    return NULL;
}

Test(walker, same_stacks_with_10_and_1000_identical_libraries_through_churn, .timeout = 120)
{
    many_load(10);
    many_chain_of(10, 10);
    many_walk();
    cr_assert_geq(many_n, 14, "the chain and beyond: %u frames", many_n);
    uint64_t ref[300];
    unsigned nref = many_n - 11;
    memcpy(ref, many_frames + 11, nref * sizeof *ref);
    cr_assert(in_function(ref[0], (void *)many_walk));
    many_walk();
    cr_assert(many_check(10, 10, ref, nref), "10 libraries, walked again (%u frames, %u)", many_n, nref);
    many_load(1000);
    for (int n = 10; n <= 200; n += 190) {
        many_chain_of(n, 1000);
        for (int k = 0; k < 3; k++) {
            many_walk();
            cr_assert(many_check(n, 1000, ref, nref), "1,000 libraries, a chain through %d of them, walk %d", n, k);
        }
    }
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, many_churn, NULL), 0);
    int bad = 0;
    many_chain_of(40, 1000);
    for (int k = 0; k < 500; k++) {
        many_walk();
        bad += !many_check(40, 1000, ref, nref);
    }
    __atomic_store_n(&many_stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    cr_assert_eq(bad, 0, "%d of 500 walks differed while libraries were loaded and unloaded", bad);
}

/* Issue 22: on the 300-library shape (a chain 40 deep across identical libraries), after warm-up,
 * more than 99% of the frames' rules come from the cache. */
Test(walker, rule_cache_hit_rate_above_99_percent_with_300_identical_libraries, .timeout = 60)
{
    many_load(300);
    many_chain_of(40, 300);
    for (int k = 0; k < 10; k++)
        many_walk();
    struct vsp_walker_stats a, b;
    vsp_walker_get_stats(&a);
    for (int k = 0; k < 5000; k++)
        many_walk();
    vsp_walker_get_stats(&b);
    unsigned long long looked = b.lookups - a.lookups, missed = b.rule_misses - a.rule_misses;
    cr_assert_geq(looked, 5000ull * 41, "every frame is looked up (%llu)", looked);
    cr_assert_lt(missed * 100, looked, "hit rate %.2f%% (%llu rules computed for %llu frames)",
                 100.0 - 100.0 * (double)missed / (double)looked, missed, looked);
}

/* The walk memo through the shim (issue 22): allocations from three sibling sites at depths that
 * change from call to call, on two threads (tests/progs/prog_sites.c). Each site allocates its own
 * size, so a replayed walk, or a stack id kept from the last capture, that gave an allocation
 * another site's stack shows as a leak of the wrong size at that site. */
Test(walker, memo_gives_each_sibling_site_its_own_stack_at_changing_depths_on_two_threads, .timeout = 120)
{
    char *dir = th_tmpdir(), trace[4300];
    const char *argv[] = {VSP_PROGS "/prog_sites", NULL};
    struct run_result r;
    th_run_traced(&r, argv, dir, "t.trace", NULL);
    cr_assert_eq(r.code, 0, "%s%s", r.out, r.err);
    int want[3];
    cr_assert_eq(sscanf(r.out, "leaks a %d b %d c %d", &want[0], &want[1], &want[2]), 3, "%s", r.out);
    snprintf(trace, sizeof trace, "%s/t.trace", dir);
    json_t *rep = th_report_json(trace), *f;
    long long count[3] = {0, 0, 0}, bytes[3] = {0, 0, 0};
    size_t i;
    json_array_foreach(json_object_get(rep, "findings"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "kind")), "leak"))
            continue;
        const char *fn = json_string_value(json_object_get(json_array_get(json_object_get(f, "stack"), 1), "function"));
        cr_assert_not_null(fn, "a leak's stack has the site above `one`");
        cr_assert(!strncmp(fn, "site_", 5) && fn[5] >= 'a' && fn[5] <= 'c' && !fn[6], "site: %s", fn);
        int k = fn[5] - 'a';
        long long c = json_integer_value(json_object_get(f, "count")), b = json_integer_value(json_object_get(f, "bytes"));
        cr_assert_eq(b, c * 4096 * (k + 1), "%s: %lld leaks of %lld bytes: another site's size among them", fn, c, b);
        count[k] += c;
        bytes[k] += b;
    }
    for (int k = 0; k < 3; k++)
        cr_assert_eq(count[k], want[k], "site_%c: %lld leaks found, %d made", 'a' + k, count[k], want[k]);
    json_decref(rep);
}
