/* The shim's own x86-64 stack walker: what libunwind's unw_backtrace did for us, cheaper and
 * without a dependency. For each return address it finds the module (a sorted table built with
 * dl_iterate_phdr, searched by bisection, republished lock-free when modules come or go, grown as
 * needed: no cap), the FDE (the binary-search table of .eh_frame_hdr), runs the CIE's and FDE's CFI
 * program up to that address, and keeps the result, a "rule" (where the CFA is, where the return
 * address and rbp were saved), in a lock-free cache keyed by the return address; a warm walk is a
 * hash probe and two or three loads a frame, whatever the number of modules and wherever they sit
 * (the cache's index folds the address's high bits into its low ones, so the same offset in many
 * libraries spreads over the table). Where a module has no FDE for an address (hand-written code,
 * no unwind tables) it steps along the rbp chain.
 * Supported CFI: the subset gcc and clang emit for ordinary code (def_cfa*, offset*, restore*,
 * advance_loc*, set_loc, remember/restore_state, undefined/same_value, GNU_args_size), plus the
 * stack-realigning prologue's expressions (CFA = *(rbp + k), rbp saved at rbp + k). Anything else
 * (the PLT's and the signal trampoline's expressions, registers kept in other registers, a CFA
 * in another register) ends the walk there.
 * Must never: fault. Unwind tables are read only through checked copies (process_vm_readv on
 * this very process: an unreadable page, say a .eh_frame_hdr the program made PROT_NONE, is a
 * failed read, not a SIGSEGV) into windows of a buffer of the walker's own; the thread's stack is
 * read directly, each load bounds checked against [the walk's starting rsp, the top of the
 * thread's stack); any other stack (a coroutine's, a fiber's, sigaltstack) is first copied with
 * one checked read and walked in the copy. A failed check ends the walk, so garbage registers, a
 * smashed stack or a protected table end a walk early instead of faulting. Nor malloc, lock or
 * print on the walk path (a thread's first walk excepted: it asks pthread_getattr_np for the stack
 * bounds; a rule-cache miss may call dl_iterate_phdr, which takes the loader's lock, so the caller
 * brackets walks against fork as it did libunwind's, and may wait, boundedly, for another thread's
 * rebuild of the module table or clear of the rule cache).
 * The stack reads sit in the walk loop itself, each after its bounds check (no helper: the loop is
 * one dependency chain of loads, and every cycle on it is a cycle a frame). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/walk/walker.h"

#ifndef __x86_64__
#error "shim/walk/walker.c is the x86-64 stack walker"
#endif

#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
/* The walker reads other frames' stack slots: under ASan a read of a caller's spill area would be
 * reported as a stack overflow although it is bounds checked here. */
#define VSP_NO_SANITIZE __attribute__((no_sanitize("address", "hwaddress")))
#endif
#endif
#ifndef VSP_NO_SANITIZE
#define VSP_NO_SANITIZE
#endif

#define VSP_WALK_LIKELY(x) __builtin_expect(!!(x), 1)
#define VSP_WALK_UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef uint64_t __attribute__((may_alias, aligned(1))) u64u;

/* ---- statistics ------------------------------------------------------------------------------ */
/* All relaxed, here and where they are counted: counters that order nothing. The slow paths count
 * into shared words; the frames looked up (one per frame of every walk) into a stripe per thread,
 * each on a cache line of its own, so walks on several threads do not share a line: a stripe is
 * one thread's unless more than STRIPES threads walk, and then a lost update only makes the count
 * approximate. */
static unsigned long long st_misses, st_uncacheable, st_refreshes, st_fp, st_unsupported, st_clears,
    st_unreadable, st_foreign, st_retries, st_no_buffer;
static unsigned st_nmods_max;
#define STRIPES 16
static struct {
    unsigned long long lookups, replayed;
    char pad[48];
} st_stripe[STRIPES] __attribute__((aligned(64)));
static unsigned st_next_stripe;

void vsp_walker_get_stats(struct vsp_walker_stats *out)
{
    out->rule_misses = vsp_load_relaxed(&st_misses);
    out->uncacheable = vsp_load_relaxed(&st_uncacheable);
    out->module_refreshes = vsp_load_relaxed(&st_refreshes);
    out->fp_rules = vsp_load_relaxed(&st_fp);
    out->stops_unsupported = vsp_load_relaxed(&st_unsupported);
    out->lookups = out->replayed = 0;
    for (unsigned i = 0; i < STRIPES; i++) {
        out->lookups += vsp_load_relaxed(&st_stripe[i].lookups);
        out->replayed += vsp_load_relaxed(&st_stripe[i].replayed);
    }
    out->cache_clears = vsp_load_relaxed(&st_clears);
    out->unreadable = vsp_load_relaxed(&st_unreadable);
    out->foreign_walks = vsp_load_relaxed(&st_foreign);
    out->retries = vsp_load_relaxed(&st_retries);
    out->no_buffer = vsp_load_relaxed(&st_no_buffer);
    out->modules = vsp_load_relaxed(&st_nmods_max);
}

/* ---- checked reads --------------------------------------------------------------------------- */
/* Copy n bytes at address src of this process into dst through the kernel (process_vm_readv): a
 * page that is unmapped or unreadable ends the copy instead of raising SIGSEGV. Returns the bytes
 * copied (0..n; a partial copy stops at the first unreadable page). pid is this process's
 * (asked once per rule computation or foreign walk: a fork child must not read its parent). Where
 * the kernel refuses the call itself (ENOSYS, EPERM: a seccomp filter that answers with an errno)
 * checked_off is set, and the walker stops reading unwind tables (the rbp chain only). errno is
 * kept. */
static int checked_off;

VSP_NO_SANITIZE static size_t checked_copy(int pid, void *dst, uint64_t src, size_t n)
{
    if (!n || pid <= 0)
        return 0;
    int saved = errno;
    struct iovec l = {dst, n}, r = {(void *)(uintptr_t)src, n};
    ssize_t k = process_vm_readv(pid, &l, 1, &r, 1, 0);
    if (k < 0 && (errno == ENOSYS || errno == EPERM))
        vsp_store_relaxed(&checked_off, 1); /* relaxed: a yes/no, nothing is read through it */
    errno = saved;
    return k > 0 ? (size_t)k : 0;
}

/* Buffers for checked copies, off the stack (a hook may run on a 16 KiB fiber): a small pool,
 * each buffer claimed by one walk at a time with a try-flag (acquire on taking, release on giving
 * back: the next holder sees the buffer as the last one left it, which is nothing it relies on).
 * A walk that finds none free uses a small window on its stack instead (slower, as correct). */
#define BUF_SIZE 65536u
#define NBUF 8
/* Mapped at the first claim, not in the library's bss: a process that never walks (every process
 * under a global preload) does not pay for half a megabyte of mapping at start-up and exit. */
static unsigned char (*bufs)[BUF_SIZE];
static int buf_busy[NBUF];
static void *map_anon(size_t bytes);

static unsigned char *buf_claim(int *slot)
{
    unsigned char (*b)[BUF_SIZE] = vsp_load_acquire(&bufs); /* acquire: pairs with the CAS below */
    if (VSP_WALK_UNLIKELY(!b)) {
        void *m = map_anon((size_t)NBUF * BUF_SIZE), *none = NULL;
        /* release: a zeroed mapping before its pointer; a loser gives its own back */
        if (m && !__atomic_compare_exchange_n((void **)&bufs, &none, m, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            munmap(m, (size_t)NBUF * BUF_SIZE);
        b = vsp_load_acquire(&bufs);
    }
    for (int i = 0; b && i < NBUF; i++)
        if (!vsp_load_relaxed(&buf_busy[i]) && vsp_spin_trylock(&buf_busy[i])) {
            *slot = i;
            return b[i];
        }
    vsp_fetch_add_relaxed(&st_no_buffer, 1);
    *slot = -1;
    return NULL;
}

static void buf_release(int slot)
{
    if (slot >= 0)
        vsp_spin_unlock(&buf_busy[slot]);
}

/* A window: a checked copy of [base, base + len) of the process's memory, in data (cap bytes). */
struct win {
    uint64_t base;
    uint32_t len, cap;
    int pid, fault; /* fault: a copy came back short of what the bounds allowed (an unreadable page) */
    unsigned char *data;
};

/* Copy [at, at + min(cap, end - at)) into the window. */
static void win_load(struct win *w, uint64_t at, uint64_t end)
{
    uint64_t want = end > at ? end - at : 0;
    if (want > w->cap)
        want = w->cap;
    w->base = at;
    w->len = (uint32_t)checked_copy(w->pid, w->data, at, want);
    if (w->len < want)
        w->fault = 1;
}

/* n (1, 2, 4 or 8) little-endian bytes at `at`, from the window, which is reloaded from `at` when
 * it does not hold them; `end` bounds what a reload copies. Sets *bad when they cannot be read. */
static uint64_t win_fixed(struct win *w, uint64_t at, unsigned n, uint64_t end, int *bad)
{
    if (at < w->base || at - w->base > w->len || w->len - (at - w->base) < n) {
        win_load(w, at, end);
        if (w->len < n) {
            *bad = 1;
            return 0;
        }
    }
    const unsigned char *s = w->data + (at - w->base);
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)s[i] << (8 * i);
    return v;
}

/* ---- reading unwind tables ------------------------------------------------------------------ */
/* A cursor over unwind-table bytes, read through window w; any read past `end` sets `bad` and
 * reads zero. */
struct cur {
    uint64_t p, end;
    int bad;
    struct win *w;
};

static uint64_t c_fixed(struct cur *c, unsigned n)
{
    if (c->bad || c->p > c->end || c->end - c->p < n) {
        c->bad = 1;
        return 0;
    }
    uint64_t v = win_fixed(c->w, c->p, n, c->end, &c->bad);
    if (!c->bad)
        c->p += n;
    return v;
}

static uint64_t c_uleb(struct cur *c)
{
    uint64_t r = 0;
    for (unsigned sh = 0;; sh += 7) {
        uint8_t b = (uint8_t)c_fixed(c, 1);
        if (c->bad)
            return 0;
        if (sh < 64)
            r |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            return r;
    }
}

static int64_t c_sleb(struct cur *c)
{
    uint64_t r = 0;
    unsigned sh = 0;
    uint8_t b;
    do {
        b = (uint8_t)c_fixed(c, 1);
        if (c->bad)
            return 0;
        if (sh < 64)
            r |= (uint64_t)(b & 0x7f) << sh;
        sh += 7;
    } while (b & 0x80);
    if (sh < 64 && (b & 0x40))
        r |= ~(uint64_t)0 << sh;
    return (int64_t)r;
}

#define PE_OMIT 0xff
/* An encoded pointer (DW_EH_PE_*). Applications: absolute, pc-relative, data-relative (to
 * `datarel`, the .eh_frame_hdr); `indirect` is not followed (only a personality pointer uses it,
 * and that is skipped). */
static uint64_t c_enc(struct cur *c, uint8_t enc, uint64_t datarel)
{
    if (enc == PE_OMIT)
        return 0;
    uint64_t at = c->p, v;
    switch (enc & 0x0f) {
    case 0x00: v = c_fixed(c, 8); break;
    case 0x01: v = c_uleb(c); break;
    case 0x02: v = c_fixed(c, 2); break;
    case 0x03: v = c_fixed(c, 4); break;
    case 0x04: v = c_fixed(c, 8); break;
    case 0x09: v = (uint64_t)c_sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)c_fixed(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)c_fixed(c, 4); break;
    case 0x0c: v = c_fixed(c, 8); break;
    default: c->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += at; break;
    case 0x30: v += datarel; break;
    default: c->bad = 1; return 0; /* textrel, funcrel, aligned: not on x86-64 Linux */
    }
    return v;
}

/* ---- the rule cache -------------------------------------------------------------------------- */
/* Open addressing, RC_PROBES slots from the index. A key changes only from 0 to a return address
 * (one CAS) and back to 0 in a clear; a rule word is written only while its slot's key is the
 * address it describes and no clear has run since the writer's walk began (both checked inside
 * the writers' section, which a clear excludes), so a slot never holds one address's key with
 * another's rule, nor a rule computed before a clear — except for a walk that overlaps a clear,
 * which the clear's epoch tells to redo itself (see vsp_walk_from_regs). A clear is how cached
 * rules are invalidated: when modules were unloaded (their addresses may hold other code now),
 * and when the table is three quarters full. No generation is kept in the rules, so none can wrap
 * round (issue 20, item 10: a 15-bit one made a rule cached 32,767 unloads earlier valid again).
 * The index is the address with its high bits folded into its low ones (one shift and one xor on
 * the walk's dependency chain): return addresses at the same offset in many libraries (identical
 * builds, or page-aligned sections) differ only above the page offset and would otherwise share a
 * slot and its probe window. */
#define RC_BITS 16
#define RC_SIZE (1u << RC_BITS)
#define RC_PROBES 8
/* keys and rules in arrays of their own: the index scales by 8 in the load's addressing mode. One
 * mapping (1 MiB) made by the first walk (rc_ready), not in the library's bss: a process that never
 * walks does not pay for it at start-up and exit (issue 22). Set once, never unmapped. */
static uint64_t *rc_key, *rc_rule;
/* The two halves, set once by rc_ready and never moved: read with relaxed loads (the acquire of
 * rc_rule in rc_ready, before any walk, ordered the table's contents; another thread may be
 * publishing them meanwhile, which plain reads of the pointers would race with) */
static inline uint64_t *rc_keys(void)
{
    return vsp_load_relaxed(&rc_key);
}
static inline uint64_t *rc_rules(void)
{
    return vsp_load_relaxed(&rc_rule);
}
/* Clears: rc_epoch counts them (a walk compares it before and after); rc_clearing keeps writers
 * out while one runs; rc_writers counts the writers inside their section; rc_used the keys set
 * since the last clear (a clear when three quarters of the slots are taken keeps probe windows
 * short, and a process that loads and unloads libraries for days keeps getting cached rules). */
static unsigned long rc_epoch;
static int rc_clearing, rc_clear_lock;
static unsigned rc_writers, rc_used;

static inline unsigned rc_index(uint64_t ra)
{
    return (unsigned)(ra ^ (ra >> RC_BITS)) & (RC_SIZE - 1);
}

/* A clear that could not run (another clear held the lock, or a writer stayed in its section, for
 * longer than CLEAR_WAIT yields; or it was asked for by a signal handler that interrupted this
 * thread's own section or clear) is left pending, and the next walk on any thread runs it: no wait
 * here is unbounded, so the walker cannot deadlock a thread against itself. rc_mine: this thread
 * is inside a writer's section (1) or a clear (2). */
#define CLEAR_WAIT 20000
static int rc_clear_pending;
static __thread int rc_mine __attribute__((tls_model("initial-exec")));

/* Empty the cache. Blocks other writers for the sweep (1 MiB read, the slots in use zeroed); walks
 * go on, and those that overlapped it redo themselves. wait: wait (boundedly) for a clear another
 * thread is running, then clear again (modules were unloaded: a clear that began before must not
 * stand for this one); else a running clear is enough. */
static void rc_clear(int wait)
{
    if (rc_mine) {
        /* relaxed: a request, run by the next walk (see vsp_walk_from_regs) */
        vsp_store_relaxed(&rc_clear_pending, 1);
        return;
    }
    int tries = 0;
    while (!vsp_spin_trylock(&rc_clear_lock)) {
        if (!wait)
            return; /* another thread is clearing a full table: that is enough */
        if (++tries > CLEAR_WAIT) {
            vsp_store_relaxed(&rc_clear_pending, 1);
            return;
        }
        sched_yield();
    }
    rc_mine = 2;
    /* seq_cst store, then seq_cst loads of the writer count: the Dekker pair with rc_write_begin
     * (its increment, then its load of rc_clearing): either the writer sees the flag and stays
     * out, or this sees the writer and waits for it to leave */
    __atomic_store_n(&rc_clearing, 1, __ATOMIC_SEQ_CST);
    for (tries = 0; __atomic_load_n(&rc_writers, __ATOMIC_SEQ_CST); tries++) {
        if (tries > CLEAR_WAIT) { /* a writer stopped in its section (SIGSTOP, a debugger): later */
            vsp_store_relaxed(&rc_clear_pending, 1);
            goto out;
        }
        sched_yield(); /* a writer's section is a CAS and a store */
    }
    vsp_store_relaxed(&rc_clear_pending, 0); /* this clear covers the requests made before it */
    for (unsigned i = 0; rc_rules() && i < RC_SIZE; i++) {
        /* relaxed: published by the epoch's release below. Only slots in use are written: a page
         * of the table no walk has touched stays the shared zero page (not the process's memory) */
        if (vsp_load_relaxed(&rc_keys()[i]))
            vsp_store_relaxed(&rc_keys()[i], 0);
        if (vsp_load_relaxed(&rc_rules()[i]))
            vsp_store_relaxed(&rc_rules()[i], 0);
    }
    vsp_store_relaxed(&rc_used, 0);
    vsp_fetch_add_relaxed(&st_clears, 1);
    /* release: a walk that acquires the new epoch sees the empty table; one that began before and
     * saw anything written after it sees the epoch moved at its end (the writers after the clear
     * acquired rc_clearing's 0, released below, before their release stores) */
    __atomic_fetch_add(&rc_epoch, 1, __ATOMIC_RELEASE);
out:
    vsp_store_release(&rc_clearing, 0);
    vsp_spin_unlock(&rc_clear_lock);
    rc_mine = 0;
}

/* A writer's section: 1 when it may write into the cache, 0 while a clear runs. */
static int rc_write_begin(void)
{
    rc_mine = 1; /* first: a signal handler's clear on this thread must not wait for us */
    /* seq_cst: the Dekker pair with rc_clear (see there) */
    __atomic_fetch_add(&rc_writers, 1, __ATOMIC_SEQ_CST);
    if (VSP_WALK_LIKELY(!__atomic_load_n(&rc_clearing, __ATOMIC_SEQ_CST)))
        return 1;
    __atomic_fetch_sub(&rc_writers, 1, __ATOMIC_RELEASE);
    rc_mine = 0;
    return 0;
}

/* The table mapped (the first walk maps it); 0 when no memory could be had: walks then stop at
 * their first frame. rc_key is set before rc_rule is published; readers test rc_rule. */
static int rc_ready(void)
{
    if (VSP_WALK_LIKELY(vsp_load_acquire(&rc_rule) != NULL)) /* acquire: pairs with the CAS below */
        return 1;
    uint64_t *m = map_anon(2 * RC_SIZE * sizeof(uint64_t)), *none = NULL;
    if (!m)
        return 0;
    if (__atomic_compare_exchange_n(&rc_key, &none, m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        vsp_store_release(&rc_rule, m + RC_SIZE); /* release: rc_key and the zeroed table first */
    else
        munmap(m, 2 * RC_SIZE * sizeof(uint64_t));
    for (int i = 0; i < 20000 && !vsp_load_acquire(&rc_rule); i++)
        sched_yield(); /* the winner is publishing it: a moment */
    return vsp_load_acquire(&rc_rule) != NULL;
}

static void rc_write_end(void)
{
    /* release: the section's stores are done before a clear that sees the count drop sweeps */
    __atomic_fetch_sub(&rc_writers, 1, __ATOMIC_RELEASE);
    rc_mine = 0;
}

/* ---- the module table ------------------------------------------------------------------------ */
struct mod {
    uint64_t lo, hi;       /* span of the PT_LOAD segments: FDE and CIE reads stay in it */
    uint64_t hdr, hdr_end; /* .eh_frame_hdr (PT_GNU_EH_FRAME), 0 if none */
};

/* The published table, sorted by lo: two copies, each under a seqlock of its own (odd while it is
 * rewritten), and mods_cur says which is current. The one writer rewrites the other copy and then
 * flips mods_cur, so a reader never waits for a writer (one preempted mid-rewrite included): at
 * worst it read the old copy as it was being rewritten, sees its sequence moved, and retries on the
 * current one. A copy too small for the modules is replaced by a larger mapping (twice what is
 * needed); the old one is never unmapped (a reader may still be reading it, and discards what it
 * read when it sees the sequence moved), so what is kept is at most about twice the largest table.
 * Fields are written with release stores and read with acquire loads (see mods_publish and
 * mod_find). */
struct modtab {
    unsigned cap; /* set before the table is published, never changed: bounds a reader's search */
    struct mod m[];
};
static struct modtab *mods[2];
static unsigned nmods[2];
static unsigned long mods_seq[2];
static unsigned mods_cur;
static int mods_valid;
/* Writers only: one rebuilds at a time (trylock; a walker that loses just uses the current
 * table), into `scratch` (grown by mapping a larger one), then copies it into `mods` inside the
 * seqlock's odd window. */
static int mods_lock;
static struct mod *scratch;
static unsigned nscratch, scratch_cap;
static int scratch_short; /* a module did not fit: no memory for a larger scratch table */
static unsigned long long seen_adds, seen_subs;

static void *map_anon(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void vsp_walker_atfork_child(void)
{
    /* the child has one thread: a rebuild, a clear or a checked copy another thread had under way
     * in the parent is gone. Relaxed throughout: no other thread to order anything for. */
    vsp_store_relaxed(&mods_lock, 0);
    for (int i = 0; i < 2; i++)
        if (vsp_load_relaxed(&mods_seq[i]) & 1)
            vsp_store_relaxed(&mods_seq[i], vsp_load_relaxed(&mods_seq[i]) + 1);
    vsp_store_relaxed(&mods_valid, 0);
    vsp_store_relaxed(&rc_writers, 0);
    vsp_store_relaxed(&rc_clearing, 0);
    vsp_store_relaxed(&rc_clear_lock, 0);
    for (int i = 0; i < NBUF; i++)
        vsp_store_relaxed(&buf_busy[i], 0);
}

void vsp_walker_modules_changed(void)
{
    rc_clear(1); /* cached rules may describe code that is gone */
    /* relaxed: only forces the next miss to re-read the module list; the list itself is published
     * by the seqlock */
    vsp_store_relaxed(&mods_valid, 0);
}

struct adds_subs {
    unsigned long long adds, subs;
    int ok;
};

static int read_adds_subs(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct adds_subs *as = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        as->adds = info->dlpi_adds;
        as->subs = info->dlpi_subs;
        as->ok = 1;
    }
    return 1; /* the counters are the same in every entry: one is enough */
}

/* One module from its program headers (which the loader keeps readable); nothing of the module's
 * own memory is read here: its unwind tables are read, checked, when a rule needs them. */
static int collect_mod(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    struct mod m = {UINT64_MAX, 0, 0, 0};
    const ElfW(Phdr) *eh = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_EH_FRAME)
            eh = ph;
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < m.lo)
            m.lo = s;
        if (e > m.hi)
            m.hi = e;
    }
    if (m.hi <= m.lo)
        return 0;
    if (eh && eh->p_memsz >= 12) {
        m.hdr = info->dlpi_addr + eh->p_vaddr;
        m.hdr_end = m.hdr + eh->p_memsz;
        if (m.hdr < m.lo || m.hdr_end > m.hi)
            m.hdr = m.hdr_end = 0;
    }
    if (nscratch >= scratch_cap) {
        unsigned cap = scratch_cap ? scratch_cap * 2 : 1024;
        struct mod *bigger = map_anon((size_t)cap * sizeof *bigger);
        if (!bigger) {
            scratch_short = 1;
            return 1;
        }
        if (scratch) {
            memcpy(bigger, scratch, (size_t)nscratch * sizeof *scratch);
            munmap(scratch, (size_t)scratch_cap * sizeof *scratch); /* the writer's own: no reader */
        }
        scratch = bigger;
        scratch_cap = cap;
    }
    scratch[nscratch++] = m;
    return 0;
}

/* Heapsort of scratch by lo: no recursion, no allocation, n log n whatever the loader's order. */
static void sift(struct mod *a, unsigned i, unsigned n)
{
    struct mod x = a[i];
    for (;;) {
        unsigned c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && a[c + 1].lo > a[c].lo)
            c++;
        if (a[c].lo <= x.lo)
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

static void mods_sort(struct mod *a, unsigned n)
{
    for (unsigned i = n / 2; i-- > 0;)
        sift(a, i, n);
    for (unsigned k = n; k-- > 1;) {
        struct mod t = a[0];
        a[0] = a[k];
        a[k] = t;
        sift(a, 0, k);
    }
}

static void mods_publish(void)
{
    mods_sort(scratch, nscratch);
    unsigned w = 1 - vsp_load_relaxed(&mods_cur); /* relaxed: only writers change it, under mods_lock */
    struct modtab *t = vsp_load_relaxed(&mods[w]); /* relaxed: writers only change it */
    if (!t || nscratch > t->cap) {
        unsigned cap = nscratch * 2 > 256 ? nscratch * 2 : 256;
        struct modtab *bigger = map_anon(sizeof *bigger + (size_t)cap * sizeof(struct mod));
        if (!bigger)
            return; /* no memory: the current table stays */
        bigger->cap = cap; /* published by the release store of the pointer below */
        t = bigger;
    }
    unsigned long s = vsp_load_relaxed(&mods_seq[w]);
    vsp_store_relaxed(&mods_seq[w], s + 1);
    /* release stores (no fences: TSan does not model them): each table write is ordered after the
     * odd sequence number, so a reader that acquires any of the new values then reads the
     * sequence as odd or moved, and discards what it read */
    vsp_store_release(&mods[w], t);
    for (unsigned i = 0; i < nscratch; i++) {
        vsp_store_release(&t->m[i].lo, scratch[i].lo);
        vsp_store_release(&t->m[i].hi, scratch[i].hi);
        vsp_store_release(&t->m[i].hdr, scratch[i].hdr);
        vsp_store_release(&t->m[i].hdr_end, scratch[i].hdr_end);
    }
    vsp_store_release(&nmods[w], nscratch);
    /* release: the copy is complete before a reader can see its even sequence number */
    vsp_store_release(&mods_seq[w], s + 2);
    /* release: ... and before a reader that acquires mods_cur turns to it */
    vsp_store_release(&mods_cur, w);
    if (nscratch > vsp_load_relaxed(&st_nmods_max))
        vsp_store_relaxed(&st_nmods_max, nscratch);
}

/* Bring the module table up to date if modules came or went (or it was never built). At most one
 * thread does it; the others carry on with the table as it is. */
static void mods_refresh(void)
{
    struct adds_subs as = {0, 0, 0};
    dl_iterate_phdr(read_adds_subs, &as);
    /* relaxed: mods_valid and seen_* are a hint to skip the work; the table's consistency comes
     * from the seqlock */
    if (as.ok && vsp_load_relaxed(&mods_valid) && as.adds == vsp_load_relaxed(&seen_adds) &&
        as.subs == vsp_load_relaxed(&seen_subs))
        return;
    if (!vsp_spin_trylock(&mods_lock))
        return;
    vsp_fetch_add_relaxed(&st_refreshes, 1);
    nscratch = 0;
    scratch_short = 0;
    as.ok = 0;
    dl_iterate_phdr(read_adds_subs, &as);
    dl_iterate_phdr(collect_mod, NULL);
    mods_publish();
    if (as.ok && as.subs != vsp_load_relaxed(&seen_subs))
        rc_clear(1); /* something was unloaded: its addresses may now hold other code */
    vsp_store_relaxed(&seen_adds, as.adds);
    vsp_store_relaxed(&seen_subs, as.subs);
    vsp_store_relaxed(&mods_valid, as.ok && !scratch_short);
    vsp_spin_unlock(&mods_lock);
}

int vsp_walker_init(void)
{
    mods_refresh();
    /* relaxed: a yes/no for the caller, nothing is read through it */
    return vsp_load_relaxed(&nmods[vsp_load_relaxed(&mods_cur) & 1]) ? 0 : -ENOENT;
}

/* The module holding pc, copied out of the seqlocked table. */
static int mod_find(uint64_t pc, struct mod *out)
{
    for (int tries = 0; tries < 1000; tries++) {
        /* acquire: pairs with the writer's release of mods_cur (the copy is complete) */
        unsigned c = vsp_load_acquire(&mods_cur) & 1;
        /* acquire: the table reads below happen after this load, so an even value here and the
         * same value after them means no rewrite overlapped them */
        unsigned long s1 = vsp_load_acquire(&mods_seq[c]);
        if (s1 & 1) {
            vsp_cpu_relax(); /* mods_cur moved since we read it: the retry reads the new one */
            continue;
        }
        /* acquire: pairs with the writer's release stores of the pointer and the count */
        const struct modtab *tab = vsp_load_acquire(&mods[c]);
        unsigned n = vsp_load_acquire(&nmods[c]), lo = 0, hi = 0;
        const struct mod *t = tab ? tab->m : NULL;
        if (tab) /* a count from a newer, larger table is clamped to this one: still discarded below */
            hi = n < tab->cap ? n : tab->cap;
        while (lo < hi) { /* first entry with lo > pc */
            unsigned mid = lo + (hi - lo) / 2;
            if (vsp_load_acquire(&t[mid].lo) <= pc)
                lo = mid + 1;
            else
                hi = mid;
        }
        int found = 0;
        if (lo > 0) {
            const struct mod *m = &t[lo - 1];
            out->lo = vsp_load_acquire(&m->lo);
            out->hi = vsp_load_acquire(&m->hi);
            out->hdr = vsp_load_acquire(&m->hdr);
            out->hdr_end = vsp_load_acquire(&m->hdr_end);
            found = pc >= out->lo && pc < out->hi;
        }
        /* the table reads above are acquire loads, so the sequence is read again after them
         * (and pairs with the writer's release stores) */
        if (vsp_load_relaxed(&mods_seq[c]) == s1)
            return found;
    }
    return 0;
}

/* ---- rules ----------------------------------------------------------------------------------- */
enum {
    K_NONE = 0,
    K_CFA_RSP = 1,       /* CFA = rsp + off */
    K_CFA_RBP = 2,       /* CFA = rbp + off */
    K_CFA_DEREF_RBP = 3, /* CFA = *(rbp + off): the stack-realigning prologue */
    K_END = 5,           /* outermost frame: the return address is undefined */
    K_BAD = 6,           /* CFI this walker does not follow */
};
enum { RBP_SAME = 0, RBP_AT_CFA = 1, RBP_AT_RBP = 2, RBP_BAD = 3 };

struct rule {
    unsigned kind, rbp_kind;
    int fp; /* the frame-pointer step for want of an FDE */
    int64_t cfa_off, ra_off, rbp_off;
};

/* Packed for the cache, laid out for the walk's dependency chain (load the rule, then the return
 * address): in the top 24 bits where the return address is, relative to the CFA's base register
 * (CFA offset + return-address offset: one arithmetic shift and the load), then the
 * return-address offset / 8 (8 bits: CFA = that address - it), rbp offset / 8 (12), rbp kind (2),
 * kind (3), and 15 bits of 1 (so a rule is never 0, which means "none yet"). */
#define RULE_SET 0x7fffu
static int fits(int64_t v, unsigned bits)
{
    int64_t lim = (int64_t)1 << (bits - 1);
    return v >= -lim && v < lim;
}

static uint64_t rule_pack(const struct rule *r)
{
    if (!fits(r->cfa_off + r->ra_off, 24) || (r->ra_off & 7) || !fits(r->ra_off / 8, 8) || (r->rbp_off & 7) ||
        !fits(r->rbp_off / 8, 12))
        return 0;
    return ((uint64_t)(r->cfa_off + r->ra_off) << 40) | ((uint64_t)(r->ra_off / 8) & 0xff) << 32 |
           ((uint64_t)(r->rbp_off / 8) & 0xfff) << 20 | (uint64_t)r->rbp_kind << 18 | (uint64_t)r->kind << 15 |
           RULE_SET;
}

/* ---- CFI ------------------------------------------------------------------------------------- */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

struct row {
    int cfa_reg; /* 6, 7, or -1 for CFA = *(rbp + cfa_off), -2 unsupported */
    int64_t cfa_off;
    int ra_kind, rbp_kind;     /* 0 same/unset, 1 at CFA + off, 2 at rbp + off (rbp only), 3 bad, 4 undefined */
    int64_t ra_off, rbp_off;
};

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_z, signal;
    uint64_t instr, instr_end;
};

static int parse_cie(uint64_t at, const struct mod *m, struct cie *ci, struct win *w)
{
    struct cur c = {at, m->hi, 0, w};
    if (at < m->lo)
        return 0;
    uint64_t len = c_fixed(&c, 4);
    if (len == 0xffffffffu)
        len = c_fixed(&c, 8);
    if (c.bad || len > m->hi - c.p)
        return 0;
    c.end = c.p + len;
    if (c_fixed(&c, 4) != 0) /* CIE id */
        return 0;
    uint8_t ver = (uint8_t)c_fixed(&c, 1);
    if (ver != 1 && ver != 3)
        return 0;
    char aug[8];
    unsigned na = 0;
    for (;;) {
        char ch = (char)c_fixed(&c, 1);
        if (c.bad)
            return 0;
        if (!ch)
            break;
        if (na + 1 >= sizeof aug)
            return 0;
        aug[na++] = ch;
    }
    aug[na] = 0;
    if (aug[0] == 'e' && aug[1] == 'h')
        return 0; /* pre-"z" gcc: not emitted for decades */
    ci->code_align = c_uleb(&c);
    ci->data_align = c_sleb(&c);
    ci->ra_reg = ver == 1 ? c_fixed(&c, 1) : c_uleb(&c);
    ci->fde_enc = 0; /* absptr */
    ci->has_z = ci->signal = 0;
    uint64_t aug_end = 0;
    for (unsigned i = 0; i < na; i++) {
        switch (aug[i]) {
        case 'z':
            if (i != 0)
                return 0;
            ci->has_z = 1;
            aug_end = c_uleb(&c);
            if (c.bad || aug_end > c.end - c.p)
                return 0;
            aug_end += c.p;
            break;
        case 'R': ci->fde_enc = (uint8_t)c_fixed(&c, 1); break;
        case 'P': {
            uint8_t enc = (uint8_t)c_fixed(&c, 1);
            c_enc(&c, enc & 0x7f, m->hdr);
            break;
        }
        case 'L': c_fixed(&c, 1); break;
        case 'S': ci->signal = 1; break;
        case 'B': break;
        default:
            if (!ci->has_z)
                return 0;
            c.p = aug_end; /* unknown augmentation: 'z' says where the data ends */
            i = na;
        }
    }
    if (ci->has_z)
        c.p = aug_end;
    if (c.bad || c.p > c.end || ci->ra_reg != REG_RA)
        return 0;
    ci->instr = c.p;
    ci->instr_end = c.end;
    return 1;
}

static void set_reg(struct row *r, uint64_t reg, int kind, int64_t off)
{
    if (reg == REG_RA) {
        r->ra_kind = kind;
        r->ra_off = off;
    } else if (reg == REG_RBP) {
        r->rbp_kind = kind;
        r->rbp_off = off;
    }
}

/* Recognise `DW_OP_breg6 k [DW_OP_deref]` (the whole expression); returns 1 with deref set, else 0. */
static int expr_breg6(struct win *w, uint64_t p, uint64_t len, uint64_t end, int64_t *k, int *deref)
{
    struct cur e = {p, p + len, 0, w};
    if (len > end - p || c_fixed(&e, 1) != 0x76)
        return 0;
    *k = c_sleb(&e);
    *deref = 0;
    if (e.p < e.end) {
        if (c_fixed(&e, 1) != 0x06)
            return 0;
        *deref = 1;
    }
    return !e.bad && e.p == e.end;
}

#define STATE_DEPTH 4 /* remember_state nests once or twice in compiled code; deeper: not followed */
/* Run CFI instructions [p, end) from loc, stopping before the first row that starts past pc.
 * `init` is the CIE's row (for DW_CFA_restore), NULL while running the CIE itself. 0 on
 * malformed or unsupported input. */
static int run_cfi(struct win *w, uint64_t p, uint64_t end, const struct cie *ci, uint64_t loc, uint64_t pc,
                   struct row *r, const struct row *init, uint64_t datarel)
{
    struct row stack[STATE_DEPTH];
    unsigned depth = 0;
    struct cur c = {p, end, 0, w};
    while (c.p < c.end && !c.bad) {
        uint8_t op = (uint8_t)c_fixed(&c, 1);
        uint64_t reg, delta = 0;
        int64_t off;
        switch (op & 0xc0) {
        case 0x40: /* advance_loc */
            delta = (op & 0x3f) * ci->code_align;
            goto advance;
        case 0x80: /* offset */
            off = (int64_t)c_uleb(&c) * ci->data_align;
            set_reg(r, op & 0x3f, 1, off);
            continue;
        case 0xc0: /* restore */
            if (!init)
                return 0;
            reg = op & 0x3f;
            if (reg == REG_RA)
                r->ra_kind = init->ra_kind, r->ra_off = init->ra_off;
            else if (reg == REG_RBP)
                r->rbp_kind = init->rbp_kind, r->rbp_off = init->rbp_off;
            continue;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x01:        /* set_loc */
            loc = c_enc(&c, ci->fde_enc, datarel);
            if (loc > pc)
                return !c.bad;
            break;
        case 0x02: delta = c_fixed(&c, 1) * ci->code_align; goto advance;
        case 0x03: delta = c_fixed(&c, 2) * ci->code_align; goto advance;
        case 0x04: delta = c_fixed(&c, 4) * ci->code_align; goto advance;
        case 0x05: /* offset_extended */
            reg = c_uleb(&c);
            off = (int64_t)c_uleb(&c) * ci->data_align;
            set_reg(r, reg, 1, off);
            break;
        case 0x06: /* restore_extended */
            reg = c_uleb(&c);
            if (!init)
                return 0;
            if (reg == REG_RA)
                r->ra_kind = init->ra_kind, r->ra_off = init->ra_off;
            else if (reg == REG_RBP)
                r->rbp_kind = init->rbp_kind, r->rbp_off = init->rbp_off;
            break;
        case 0x07: set_reg(r, c_uleb(&c), 4, 0); break; /* undefined */
        case 0x08: set_reg(r, c_uleb(&c), 0, 0); break; /* same_value */
        case 0x09:                                      /* register: kept in another register */
            reg = c_uleb(&c);
            c_uleb(&c);
            set_reg(r, reg, 3, 0);
            break;
        case 0x0a: /* remember_state */
            if (depth >= STATE_DEPTH)
                return 0;
            stack[depth++] = *r;
            break;
        case 0x0b: /* restore_state: the CFA too (as gcc and libunwind read it) */
            if (!depth)
                return 0;
            *r = stack[--depth];
            break;
        case 0x0c: /* def_cfa */
            reg = c_uleb(&c);
            r->cfa_reg = reg == REG_RSP || reg == REG_RBP ? (int)reg : -2;
            r->cfa_off = (int64_t)c_uleb(&c);
            break;
        case 0x0d: /* def_cfa_register */
            reg = c_uleb(&c);
            r->cfa_reg = reg == REG_RSP || reg == REG_RBP ? (int)reg : -2;
            break;
        case 0x0e: r->cfa_off = (int64_t)c_uleb(&c); break; /* def_cfa_offset */
        case 0x0f: {                                        /* def_cfa_expression */
            uint64_t len = c_uleb(&c);
            if (c.bad || len > c.end - c.p)
                return 0;
            int64_t k;
            int deref;
            if (!c.bad && expr_breg6(w, c.p, len, c.end, &k, &deref) && deref) {
                r->cfa_reg = -1;
                r->cfa_off = k;
            } else {
                r->cfa_reg = -2; /* the PLT's, the signal trampoline's: not followed */
            }
            c.p += len;
            break;
        }
        case 0x10: { /* expression: register saved at the address the expression computes */
            reg = c_uleb(&c);
            uint64_t len = c_uleb(&c);
            if (c.bad || len > c.end - c.p)
                return 0;
            int64_t k;
            int deref;
            if (!c.bad && reg == REG_RBP && expr_breg6(w, c.p, len, c.end, &k, &deref) && !deref)
                set_reg(r, reg, 2, k);
            else
                set_reg(r, reg, 3, 0);
            c.p += len;
            break;
        }
        case 0x11: /* offset_extended_sf */
            reg = c_uleb(&c);
            off = c_sleb(&c) * ci->data_align;
            set_reg(r, reg, 1, off);
            break;
        case 0x12: /* def_cfa_sf */
            reg = c_uleb(&c);
            r->cfa_reg = reg == REG_RSP || reg == REG_RBP ? (int)reg : -2;
            r->cfa_off = c_sleb(&c) * ci->data_align;
            break;
        case 0x13: r->cfa_off = c_sleb(&c) * ci->data_align; break; /* def_cfa_offset_sf */
        case 0x14:                                                  /* val_offset */
            reg = c_uleb(&c);
            c_uleb(&c);
            set_reg(r, reg, 3, 0);
            break;
        case 0x15: /* val_offset_sf */
            reg = c_uleb(&c);
            c_sleb(&c);
            set_reg(r, reg, 3, 0);
            break;
        case 0x16: { /* val_expression */
            reg = c_uleb(&c);
            uint64_t len = c_uleb(&c);
            if (c.bad || len > c.end - c.p)
                return 0;
            set_reg(r, reg, 3, 0);
            c.p += len;
            break;
        }
        case 0x2e: c_uleb(&c); break; /* GNU_args_size */
        case 0x2f:                    /* GNU_negative_offset_extended */
            reg = c_uleb(&c);
            off = -(int64_t)c_uleb(&c) * ci->data_align;
            set_reg(r, reg, 1, off);
            break;
        default: return 0;
        }
        continue;
    advance:
        if (c.bad)
            return 0;
        loc += delta;
        if (loc > pc)
            return 1;
    }
    return !c.bad;
}

/* No FDE: the frame-pointer step (CFA = rbp + 16, return address below it, the caller's rbp at rbp). */
static void fp_rule(struct rule *out)
{
    out->fp = 1;
    out->kind = K_CFA_RBP;
    out->cfa_off = 16;
    out->ra_off = -8;
    out->rbp_kind = RBP_AT_CFA;
    out->rbp_off = -16;
}

/* Windows of one rule computation: the .eh_frame_hdr table, the FDE, the CIE. In a claimed buffer
 * when one is free, else small ones on the stack. */
#define WIN_HDR 16384u
#define WIN_FDE 4096u
#define WIN_CIE 2048u
#define WIN_SMALL 16u /* the stack's share is kept small: a hook may run on a 16 KiB fiber */

/* The FDE's address in the module's .eh_frame_hdr for pc, or 0 (no table, not covered, a table it
 * does not read). Bisection over the table through window w: each probe outside the window
 * reloads it around the probe (or, once the range left fits, over the whole range). */
static uint64_t hdr_lookup(const struct mod *m, uint64_t pc, struct win *w)
{
    /* .eh_frame_hdr: version, eh_frame_ptr_enc, fde_count_enc, table_enc, eh_frame_ptr,
     * fde_count, then (initial location, FDE address) pairs sorted by location */
    struct cur c = {m->hdr, m->hdr_end, 0, w};
    uint8_t ver = (uint8_t)c_fixed(&c, 1), ptr_enc = (uint8_t)c_fixed(&c, 1), cnt_enc = (uint8_t)c_fixed(&c, 1),
            tab_enc = (uint8_t)c_fixed(&c, 1);
    c_enc(&c, ptr_enc, m->hdr);
    uint64_t count = c_enc(&c, cnt_enc, m->hdr);
    if (c.bad || ver != 1 || tab_enc != 0x3b || count == 0 || count > (m->hdr_end - c.p) / 8)
        return 0; /* datarel sdata4 is what every linker writes; anything else: the rbp chain */
    uint64_t tab = c.p, lo = 0, hi = count;
    int bad = 0;
    while (lo < hi) { /* first entry whose location is past pc */
        uint64_t mid = lo + (hi - lo) / 2, at = tab + mid * 8;
        if (at < w->base || at - w->base > w->len || w->len - (at - w->base) < 8) {
            uint64_t from = tab + lo * 8;
            if ((hi - lo) * 8 > w->cap) /* centred on the probe: the next probes fall near it */
                from = at - (w->cap / 2 & ~7u);
            win_load(w, from, tab + hi * 8);
        }
        uint64_t loc = m->hdr + (uint64_t)(int64_t)(int32_t)win_fixed(w, at, 4, m->hdr_end, &bad);
        if (bad)
            return 0;
        if (loc <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    uint64_t fde = m->hdr + (uint64_t)(int64_t)(int32_t)win_fixed(w, tab + (lo - 1) * 8 + 4, 4, m->hdr_end, &bad);
    return bad ? 0 : fde;
}

/* The rule for return address ra, from the unwind tables (not cached). *cacheable is cleared for
 * an answer that may change (no module yet; a table that could not be read). */
/* What one walk learns once: whether it refreshed the module table (1; 2: and waited for another
 * thread's rebuild), the process's id for checked reads (0 until the walk's first rule
 * computation asks), and how it ended. */
struct walk_ctx {
    int refreshed, pid;
    int out; /* the walk ended at a read outside the readable range (a foreign walk then copies more) */
    int guessed; /* the last rule computed is a guess (no module for the pc, an unreadable table) */
};

/* The shim's fork bracket (core.c: fork waits while a thread is inside it), taken only around
 * what locks: the module-table refresh (dl_iterate_phdr, the loader's lock) in a rule-cache miss,
 * and the thread's first pthread_getattr_np. A walk over cached rules takes no lock and runs
 * outside it (issue 22: two locked instructions a walk). Weak: absent where the walker is tested
 * on its own. */
extern void vsp_walk_enter(void) __attribute__((weak));
extern void vsp_walk_leave(void) __attribute__((weak));

static void rule_compute_unbracketed(uint64_t ra, struct walk_ctx *ctx, struct rule *out, int *cacheable);

__attribute__((noinline, cold)) static void rule_compute(uint64_t ra, struct walk_ctx *ctx, struct rule *out,
                                                         int *cacheable)
{
    if (vsp_walk_enter)
        vsp_walk_enter();
    rule_compute_unbracketed(ra, ctx, out, cacheable);
    if (vsp_walk_leave)
        vsp_walk_leave();
}

static void rule_compute_unbracketed(uint64_t ra, struct walk_ctx *ctx, struct rule *out, int *cacheable)
{
    uint64_t pc = ra - 1; /* inside the call instruction: the caller's row, even at a function's end */
    struct mod m = {0, 0, 0, 0};
    *cacheable = 1;
    memset(out, 0, sizeof *out);
    if (!ctx->refreshed) {
        ctx->refreshed = 1;
        mods_refresh();
    }
    if (!mod_find(pc, &m) && ctx->refreshed == 1) {
        /* Another thread is rebuilding the table (the first walks of a multi-threaded start, or
         * a library just loaded): the address is probably in what it publishes. Wait for it,
         * boundedly (a rebuild takes microseconds), rather than guess with the rbp chain. The
         * lock's release store pairs with our acquire load; the table itself is seqlocked. Then
         * look again (the rebuild may have ended just before we looked at the lock); at most
         * once a walk, so a pc in no module at all (JIT code) costs two module checks a walk. */
        ctx->refreshed = 2;
        for (int i = 0; i < 20000 && vsp_load_acquire(&mods_lock); i++)
            sched_yield();
        mods_refresh();
    }
    if (!mod_find(pc, &m)) {
        *cacheable = 0;
        fp_rule(out); /* no module (JIT code, or one loaded this instant): the rbp chain */
        return;
    }
    fp_rule(out); /* what follows returns with this where there is no FDE */
    if (!m.hdr || vsp_load_relaxed(&checked_off)) /* relaxed: see checked_copy */
        return;
    int slot;
    unsigned char *buf = buf_claim(&slot), small[3][WIN_SMALL];
    if (!ctx->pid) /* asked once a walk, not cached longer: a child made by a raw clone would read its parent */
        ctx->pid = (int)getpid();
    int pid = ctx->pid;
    struct win wh = {0, 0, buf ? WIN_HDR : WIN_SMALL, pid, 0, buf ? buf : small[0]};
    struct win wf = {0, 0, buf ? WIN_FDE : WIN_SMALL, pid, 0, buf ? buf + WIN_HDR : small[1]};
    struct win wc = {0, 0, buf ? WIN_CIE : WIN_SMALL, pid, 0, buf ? buf + WIN_HDR + WIN_FDE : small[2]};
    int failed = 0; /* no rule from the tables: an unreadable page (a window's fault) may be why */
    uint64_t fde = hdr_lookup(&m, pc, &wh);
    if (!fde) {
        failed = 1;
        goto out;
    }
    if (fde < m.lo || fde >= m.hi)
        goto bad;
    struct cur f = {fde, m.hi, 0, &wf};
    uint64_t len = c_fixed(&f, 4);
    if (len == 0xffffffffu)
        len = c_fixed(&f, 8);
    if (f.bad || len < 4 || len > m.hi - f.p)
        goto bad;
    f.end = f.p + len;
    uint64_t id_at = f.p, cie_off = c_fixed(&f, 4);
    if (!cie_off || cie_off > id_at)
        goto bad;
    struct cie ci;
    if (!parse_cie(id_at - cie_off, &m, &ci, &wc))
        goto bad;
    uint64_t begin = c_enc(&f, ci.fde_enc, m.hdr);
    uint64_t range = c_enc(&f, ci.fde_enc & 0x0f, m.hdr);
    if (f.bad)
        goto bad;
    if (pc < begin || pc - begin >= range)
        goto out; /* a gap between FDEs: the rbp chain */
    if (ci.has_z) {
        uint64_t aug = c_uleb(&f);
        if (f.bad || aug > f.end - f.p)
            goto bad;
        f.p += aug;
    }
    if (f.bad || f.p > f.end || ci.signal)
        goto bad; /* a signal frame: its rules are expressions over the sigcontext */
    struct row init = {REG_RSP, 8, 0, 0, 0, 0};
    if (!run_cfi(&wc, ci.instr, ci.instr_end, &ci, begin, UINT64_MAX, &init, NULL, m.hdr))
        goto bad;
    struct row r = init;
    if (!run_cfi(&wf, f.p, f.end, &ci, begin, pc, &r, &init, m.hdr))
        goto bad;
    if (r.ra_kind == 4 || r.ra_kind == 0) {
        /* undefined return address (or never described): the outermost frame */
        out->kind = K_END;
        out->fp = 0;
        goto out;
    }
    if (r.ra_kind != 1 || r.rbp_kind == 3 || r.cfa_reg == -2)
        goto bad;
    out->kind = r.cfa_reg == REG_RSP ? K_CFA_RSP : r.cfa_reg == REG_RBP ? K_CFA_RBP : K_CFA_DEREF_RBP;
    out->cfa_off = r.cfa_off;
    out->ra_off = r.ra_off;
    out->rbp_kind = r.rbp_kind == 1 ? RBP_AT_CFA : r.rbp_kind == 2 ? RBP_AT_RBP : RBP_SAME;
    out->rbp_off = r.rbp_off;
    out->fp = 0;
    goto out;
bad:
    failed = 1;
    if (wh.fault || wf.fault || wc.fault)
        goto out; /* not malformed: unreadable (see below) */
    vsp_fetch_add_relaxed(&st_unsupported, 1);
    memset(out, 0, sizeof *out);
    out->kind = K_BAD;
out:
    if (failed && (wh.fault || wf.fault || wc.fault)) {
        /* A page of the tables could not be read (the program protected or unmapped it): the
         * rbp chain for now, not cached, so the tables are read again once they can be. A window
         * that came back short but held what was needed (it reads ahead, maybe into a gap
         * between segments) changes nothing. */
        vsp_fetch_add_relaxed(&st_unreadable, 1);
        fp_rule(out);
        *cacheable = 0;
    }
    buf_release(slot);
}

/* A miss of the walk's one-probe fast path: look further, else compute the rule (and cache it
 * when it can be). Returns the packed rule; 0 (kind K_NONE) when it cannot be packed, which ends
 * the walk (a frame larger than 8 MiB, rbp saved more than 16 KiB from the CFA). */
__attribute__((noinline)) static uint64_t rule_slow(uint64_t ra, unsigned long epoch, struct walk_ctx *ctx)
{
    unsigned h = rc_index(ra);
    int mine = -1, free_slot = -1;
    for (unsigned i = 0; i < RC_PROBES; i++) {
        unsigned s = (h + i) & (RC_SIZE - 1);
        /* acquire, both: as in the walk's fast path (a clear's epoch covers what they see) */
        uint64_t k = vsp_load_acquire(&rc_keys()[s]);
        if (k == ra) {
            uint64_t p = vsp_load_acquire(&rc_rules()[s]);
            if (p)
                return p;
            mine = (int)s; /* ours, its rule not written yet */
            break;
        }
        if (!k) {
            free_slot = (int)s;
            break;
        }
    }
    vsp_fetch_add_relaxed(&st_misses, 1);
    int cacheable;
    struct rule r;
    rule_compute(ra, ctx, &r, &cacheable);
    if (r.fp)
        vsp_fetch_add_relaxed(&st_fp, 1);
    uint64_t packed = rule_pack(&r);
    if (!packed) {
        vsp_fetch_add_relaxed(&st_unsupported, 1);
        return 0;
    }
    if (!cacheable || (mine < 0 && free_slot < 0)) {
        /* no module yet, an unreadable table, or the probe window is full: computed each time
         * (a window full in a cache more than half full empties it, so this stays rare) */
        vsp_fetch_add_relaxed(&st_uncacheable, 1);
        ctx->guessed = !cacheable; /* (a walk memo does not replay a guess: walker.h) */
        if (cacheable && vsp_load_relaxed(&rc_used) > RC_SIZE / 2) /* relaxed: a hint */
            rc_clear(0);
        return packed;
    }
    if (!rc_write_begin())
        return packed; /* a clear is running: not cached this time */
    /* relaxed: no clear runs while we are in the section, so the epoch cannot move under us; one
     * that ran since the walk began may have swept modules this rule was computed from */
    if (vsp_load_relaxed(&rc_epoch) != epoch) {
        rc_write_end();
        return packed;
    }
    int s = mine >= 0 ? mine : free_slot;
    uint64_t expect = 0;
    if (mine < 0 && vsp_cas_release(&rc_keys()[s], &expect, ra) && /* release: pairs with the walks' acquire */
        vsp_fetch_add_relaxed(&rc_used, 1) > RC_SIZE / 4 * 3) {
        rc_write_end();
        rc_clear(0); /* three quarters full: probe windows grow long; start again */
        return packed;
    }
    /* The key is ours (a clear, which could reset it, is kept out while we are in the section):
     * the rule we write describes it. release: pairs with the walks' acquire loads of the rule */
    if (vsp_load_relaxed(&rc_keys()[s]) == ra)
        vsp_store_release(&rc_rules()[s], packed);
    rc_write_end();
    return packed;
}

/* ---- the walk -------------------------------------------------------------------------------- */
/* The thread's stack, [lo, hi), asked once (pthread_getattr_np: on the main thread it reads
 * /proc/self/maps); hi == 0 until asked, lo == hi == 1 when it failed (then every walk is a
 * foreign one). stripe: the thread's statistics stripe, plus one. */
static __thread struct {
    uint64_t lo, hi;
    unsigned stripe;
} walk_stack __attribute__((tls_model("initial-exec")));

void vsp_walker_thread_reset(void)
{
    walk_stack.lo = walk_stack.hi = 0;
}

static void stack_bounds(void)
{
    pthread_attr_t a;
    void *addr;
    size_t size;
    walk_stack.lo = walk_stack.hi = 1;
    if (!walk_stack.stripe) /* relaxed: a counter's spread, nothing ordered */
        walk_stack.stripe = vsp_fetch_add_relaxed(&st_next_stripe, 1) % STRIPES + 1;
    if (vsp_walk_enter)
        vsp_walk_enter(); /* on the main thread it reads /proc/self/maps with stdio and malloc */
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &addr, &size) == 0 && size) {
            walk_stack.lo = (uint64_t)(uintptr_t)addr;
            walk_stack.hi = walk_stack.lo + size;
        }
        pthread_attr_destroy(&a);
    }
    if (vsp_walk_leave)
        vsp_walk_leave();
}

/* One step of the walk, over a stack readable in [lo, last + 8) at the address plus `delta`: 0 for
 * the thread's own stack, the offset of the copy for a foreign one (a constant at each call, so
 * the own-stack walk compiles without it). From the frame (*rip, *rsp, *rbp) to its caller's;
 * 0 where the walk ends. Every step moves rsp strictly up the stack, so a walk ends. */
/* Flags of a memo level (walker.h): its step was taken (ra_at, rbp_at set); that step read rbp (a
 * CFA or a saved-rbp slot relative to it); it cannot be replayed (a CFA loaded through rbp); this
 * level's rbp decides a later frame (set when the memo is complete). */
#define LV_STEPPED 1u
#define LV_USES_RBP 2u
#define LV_NO_REPLAY 4u
#define LV_LIVE_RBP 8u
#define LV_TERMINAL 16u /* the walk ended here by its rule alone (the outermost frame): no load decided it */

VSP_NO_SANITIZE static inline __attribute__((always_inline)) int
walk_step_rec(uint64_t *rip_p, uint64_t *rsp_p, uint64_t *rbp_p, uint64_t lo, uint64_t last, uint64_t hi,
              uint64_t delta, unsigned long epoch, struct walk_ctx *ctx, struct vsp_walk_level *rec)
{
    const uint64_t rip = *rip_p, rsp = *rsp_p;
    /* the fast path: the rule sits in the first slot probed. acquire, both (free on x86): a rule
     * seen is one written while its slot's key was rip, and a key seen set after a clear makes
     * the clear's epoch visible at the walk's end (see rc_clear) */
    unsigned slot = rc_index(rip);
    uint64_t p = vsp_load_acquire(&rc_rules()[slot]);
    unsigned flags = LV_STEPPED;
    if (VSP_WALK_UNLIKELY(vsp_load_acquire(&rc_keys()[slot]) != rip || !p)) {
        p = rule_slow(rip, epoch, ctx);
        if (rec && ctx->guessed) {
            /* the rbp chain for a pc in no module yet (a library loaded this instant) or an
             * unreadable table: walked again each time, not replayed, so the rule from the tables
             * takes over once they can be read */
            flags |= LV_NO_REPLAY;
            ctx->guessed = 0;
        }
    }
    unsigned kind = (p >> 15) & 7;
    uint64_t base, a, rbp = *rbp_p;
    if (VSP_WALK_LIKELY(kind == K_CFA_RSP)) {
        base = rsp;
    } else if (kind == K_CFA_RBP) {
        base = rbp;
        flags |= LV_USES_RBP;
    } else if (kind == K_CFA_DEREF_RBP) {
        flags |= LV_USES_RBP | LV_NO_REPLAY;
        /* CFA = *(rbp + k): the base is the loaded value, then the offsets as usual (k is the
         * rule's CFA offset: return-address location - return-address offset) */
        int64_t cfa_off = ((int64_t)p >> 40) - (int64_t)(int8_t)(p >> 32) * 8;
        a = rbp + (uint64_t)cfa_off;
        if (a < lo || a > last)
            return ctx->out = 1, 0;
        base = *(const u64u *)(uintptr_t)(a + delta) - (uint64_t)cfa_off; /* so that base + offsets = CFA + ra offset */
    } else {
        if (rec && !(flags & LV_NO_REPLAY))
            rec->flags = LV_TERMINAL; /* the same rip ends a replayed walk the same way */
        return 0; /* outermost, not followed, or not packable */
    }
    a = base + (uint64_t)((int64_t)p >> 40); /* where the return address is */
    if (a < lo || a > last)
        return ctx->out = 1, 0;
    uint64_t next = *(const u64u *)(uintptr_t)(a + delta);
    uint64_t cfa = a - (uint64_t)((int64_t)(int8_t)(p >> 32) * 8);
    if (cfa <= rsp || cfa > hi) /* a caller's frame lies above its callee's */
        return 0;
    if (rec) {
        rec->ra_at = a;
        rec->rbp_at = 0;
    }
    unsigned rbp_kind = (p >> 18) & 3;
    if (rbp_kind != RBP_SAME) {
        if (rbp_kind != RBP_AT_CFA)
            flags |= LV_USES_RBP;
        a = (rbp_kind == RBP_AT_CFA ? cfa : rbp) + (uint64_t)(((int64_t)(p << 32) >> 52) * 8);
        if (a < lo || a > last)
            return ctx->out = 1, 0;
        *rbp_p = *(const u64u *)(uintptr_t)(a + delta);
        if (rec)
            rec->rbp_at = a;
    }
    if (rec)
        rec->flags = next ? flags : 0;
    *rip_p = next;
    *rsp_p = cfa;
    return next != 0;
}

VSP_NO_SANITIZE static inline __attribute__((always_inline)) int
walk_step(uint64_t *rip_p, uint64_t *rsp_p, uint64_t *rbp_p, uint64_t lo, uint64_t last, uint64_t hi, uint64_t delta,
          unsigned long epoch, struct walk_ctx *ctx)
{
    return walk_step_rec(rip_p, rsp_p, rbp_p, lo, last, hi, delta, epoch, ctx, NULL);
}

/* The walk: `skip` frames stepped over, then up to `max` stored. Returns the frames stored; adds
 * the frames looked up to *looked. */
VSP_NO_SANITIZE static inline __attribute__((always_inline)) unsigned
walk_core(uint64_t *frames, unsigned max, unsigned skip, uint64_t rip, uint64_t rsp, uint64_t rbp, uint64_t hi,
          uint64_t delta, unsigned long epoch, struct walk_ctx *ctx, unsigned *looked)
{
    /* readable: [lo, hi) = [the starting rsp, the top of the stack), as a last valid 8-byte slot */
    const uint64_t lo = rsp, last = hi - 8;
    unsigned n = 0, skipped = 0;
    if (!rip)
        return 0;
    for (; skipped < skip; skipped++)
        if (!walk_step(&rip, &rsp, &rbp, lo, last, hi, delta, epoch, ctx)) {
            *looked += skipped + 1;
            return 0;
        }
    for (;;) {
        frames[n++] = rip;
        if (n >= max || !walk_step(&rip, &rsp, &rbp, lo, last, hi, delta, epoch, ctx))
            break;
    }
    *looked += skipped + n;
    return n;
}

/* The walk through a memo (walker.h), on the thread's own stack: levels [0, skip) stepped over,
 * then up to `max` stored, as walk_core. Levels stepped as usual are staged in the memo's second
 * half (the first, the memo itself, is read while the walk looks for a level it has); a replay
 * writes only frames. At the end the memo is rebuilt in place: the staged levels before the
 * replay, the replayed ones (moved if they now sit at other depths), the staged ones after. */
static void memo_liveness(struct vsp_walk_level *lv, unsigned n, unsigned same_lo, unsigned same_hi);
static void memo_fast_build(struct vsp_walk_memo *m, unsigned levels, unsigned skip, unsigned total);

VSP_NO_SANITIZE static unsigned walk_memo(uint64_t *restrict frames, unsigned max, unsigned skip, uint64_t rip,
                                          uint64_t rsp, uint64_t rbp, uint64_t hi, unsigned long epoch,
                                          struct walk_ctx *ctx, unsigned *looked, unsigned *replayed_out,
                                          struct vsp_walk_memo *m, int intact)
{
    const uint64_t lo = rsp, last = hi - 8;
    const unsigned total = skip + max;
    struct vsp_walk_level *restrict A = m->lv[0];
    /* the memo is usable only for this stack and this rule cache; without one, stage in place */
    const unsigned on = m->epoch == epoch && m->hi == hi && m->n <= VSP_WALK_MEMO_LEVELS ? m->n : 0;
    struct vsp_walk_level *restrict S = on ? m->lv[1] : A;
    unsigned i = 0, j = 0, out = 0, steps = 0, replayed = 0;
    int matched = 0, end_in_replay = 0;
    unsigned mi = 0, mj = 0, mk = 0; /* current levels [mi, ..) are the memo's [mj, mk) */
    if (!rip || !max)
        return 0;
    if (on && m->fast.ok && skip == m->skip && total == m->total && A[0].rip == rip && A[0].rsp == rsp &&
        (!(A[0].flags & LV_LIVE_RBP) || A[0].rbp == rbp)) {
        /* The repeat check (walker.h): the replay from level 0 to the memo's end, all of it. Each
         * slot lies in [lo, last] (lo is the memo's own, its rsp at level 0). */
        const struct vsp_walk_fast *f = &m->fast;
        unsigned k = 0;
        /* four slots a round, their differences or'ed: one branch per four */
        for (; k < f->nchk; k += 4) {
#define VSP_CHK(i) (*(const u64u *)(uintptr_t)f->chk[k + i].at ^ f->chk[k + i].val)
            if (VSP_CHK(0) | VSP_CHK(1) | VSP_CHK(2) | VSP_CHK(3))
                break;
#undef VSP_CHK
        }
        if (VSP_WALK_LIKELY(k == f->nchk)) {
            if (!intact) /* (else they are there already: the memo's last walk wrote them) */
                memcpy(frames, f->frames, f->nframes * sizeof *frames);
            *replayed_out += on - 1;
            m->same = 1;
            return f->nframes;
        }
    }
    m->fast.ok = 0; /* the memo changes below */
    for (;;) {
        struct vsp_walk_level *L = &S[i];
        L->rip = rip;
        L->rsp = rsp;
        L->rbp = rbp;
        L->flags = 0;
        if (i >= skip)
            frames[out++] = rip;
        if (i + 1 >= total)
            break;
        if (!matched && on && j < on) {
            /* the memo's levels lie at rising rsp: move to the first not below ours */
            while (j < on && A[j].rsp < rsp)
                j++;
            if (j < on && A[j].rsp == rsp && A[j].rip == rip && (!(A[j].flags & LV_LIVE_RBP) || A[j].rbp == rbp)) {
                /* Replay: level i is the memo's level j. Each step is taken as the memo took it
                 * while the slots it loaded hold the same values: the same rule (same rip, no
                 * clear since), applied to the same rsp and (where it reads it) rbp, gives the
                 * same caller. */
                matched = 1;
                mi = i;
                mj = j;
                /* replay as far as the memo goes, and no further than the walk may */
                const struct vsp_walk_level *o = &A[j];
                const struct vsp_walk_level *const stop = &A[j + (on - 1 - j < total - 1 - i ? on - 1 - j : total - 1 - i)];
                for (; o < stop; o++) {
                    if ((o->flags & (LV_STEPPED | LV_NO_REPLAY)) != LV_STEPPED)
                        break;
                    const uint64_t ra_at = o->ra_at, rbp_at = o->rbp_at;
                    if (ra_at < lo)
                        break;
                    const uint64_t next = *(const u64u *)(uintptr_t)ra_at;
                    if (next != o[1].rip)
                        break;
                    if (rbp_at) {
                        if (rbp_at < lo)
                            break;
                        const uint64_t nrbp = *(const u64u *)(uintptr_t)rbp_at;
                        if ((o[1].flags & LV_LIVE_RBP) && nrbp != o[1].rbp)
                            break;
                        rbp = nrbp;
                    }
                    if (++i >= skip)
                        frames[out++] = next;
                }
                replayed += (unsigned)(o - &A[j]);
                j = (unsigned)(o - A);
                rip = o->rip;
                rsp = o->rsp;
                end_in_replay = i + 1 >= total;
                mk = j;
                /* the memo's last level, where its walk ended by the rule alone: this one ends there
                 * too, with no step taken */
                if (!end_in_replay && j + 1 == on && (o->flags & LV_TERMINAL))
                    end_in_replay = 1;
                if (end_in_replay)
                    break;
                if (o < stop) {
                    /* The walk left the memo here (another caller at some level): the replayed
                     * levels are staged, and a later level may meet the memo again (the same
                     * frames above a different one: siblings, or one call site among many). */
                    memcpy(S + mi, A + mj, (mk - mj) * sizeof *A);
                    matched = 0;
                }
                /* level i (the memo's mk) steps as usual from here: staged */
                L = &S[i];
                L->rip = rip;
                L->rsp = rsp;
                L->rbp = rbp;
                L->flags = 0;
            }
        }
        steps++;
        if (!walk_step_rec(&rip, &rsp, &rbp, lo, last, hi, 0, epoch, ctx, L))
            break;
        i++;
    }
    *looked += steps;
    *replayed_out += replayed;
    const unsigned levels = i + 1;
    if (!matched) {
        if (S != A)
            memcpy(A, S, levels * sizeof *A);
        memo_liveness(A, levels, 0, 0);
    } else {
        /* current [mi, mi + cnt) = the memo's [mj, mj + cnt); the staged tail from ti on */
        const unsigned cnt = mk - mj + (unsigned)end_in_replay, ti = mi + cnt;
        if (mi != mj)
            memmove(A + mi, A + mj, cnt * sizeof *A);
        memcpy(A, S, mi * sizeof *A);
        memcpy(A + ti, S + ti, (levels - ti) * sizeof *A);
        memo_liveness(A, levels, mi, ti);
    }
    /* the same frames as the last walk: every level from skip on replayed in place, no more and
     * no fewer levels than it had, asked the same way */
    m->same = matched && mi == mj && mi <= skip && levels == on && skip == m->skip && total == m->total;
    m->skip = skip;
    m->total = total;
    m->n = levels;
    m->epoch = epoch;
    m->hi = hi;
    if (m->same && levels <= VSP_WALK_FAST_LEVELS)
        memo_fast_build(m, levels, skip, total);
    return out;
}

/* The repeat check of a memo of `levels` levels (walker.h), for a walk that repeated the one before
 * it: only where a replay from level 0 would reach the memo's end and end there (every step
 * replayable, the last level the outermost frame or the depth asked), the loads that replay would
 * compare: each level's return-address slot against the next level's rip, and its saved-rbp slot
 * where the next level's rbp decides a later frame. */
static void memo_fast_build(struct vsp_walk_memo *m, unsigned levels, unsigned skip, unsigned total)
{
    const struct vsp_walk_level *A = m->lv[0];
    struct vsp_walk_fast *f = &m->fast;
    if (levels <= skip || !(levels == total || (A[levels - 1].flags & LV_TERMINAL)))
        return;
    unsigned c = 0;
    for (unsigned k = 0; k + 1 < levels; k++) {
        if ((A[k].flags & (LV_STEPPED | LV_NO_REPLAY)) != LV_STEPPED)
            return;
        f->chk[c].at = A[k].ra_at;
        f->chk[c++].val = A[k + 1].rip;
        if (A[k].rbp_at && (A[k + 1].flags & LV_LIVE_RBP)) {
            f->chk[c].at = A[k].rbp_at;
            f->chk[c++].val = A[k + 1].rbp;
        }
    }
    f->zero = 0;
    for (; c % 4; c++) { /* to a round of four: checks that hold */
        f->chk[c].at = (uint64_t)(uintptr_t)&f->zero;
        f->chk[c].val = 0;
    }
    for (unsigned k = skip; k < levels; k++)
        f->frames[k - skip] = A[k].rip;
    f->nchk = c;
    f->nframes = levels - skip;
    f->ok = 1;
}

/* Which levels' rbp decides a later frame: one read by a later step before a step reloads it. The
 * last level's decides none (a walk that goes on from it steps as usual, with the real rbp).
 * Levels [same_lo, same_hi) were replayed: their own flags are as before, so once a level there
 * comes out as it was, every one below it down to same_lo does too. */
static void memo_liveness(struct vsp_walk_level *lv, unsigned n, unsigned same_lo, unsigned same_hi)
{
    unsigned live = 0;
    for (unsigned k = n; k-- > 0;) {
        unsigned f = lv[k].flags;
        live = (f & LV_STEPPED) ? ((f & LV_USES_RBP) || (!lv[k].rbp_at && live)) : 0;
        if (k >= same_lo && k < same_hi && live == !!(f & LV_LIVE_RBP)) {
            k = same_lo; /* unchanged down to same_lo */
            live = !!(lv[k].flags & LV_LIVE_RBP);
            continue;
        }
        lv[k].flags = (f & ~LV_LIVE_RBP) | (live ? LV_LIVE_RBP : 0);
    }
}

/* Count the frames a walk looked up, in the thread's stripe. relaxed: a counter (a stripe shared by
 * two threads may lose an update; see the statistics). */
static inline void count_lookups(unsigned looked)
{
    unsigned s = walk_stack.stripe ? walk_stack.stripe - 1 : 0;
    vsp_store_relaxed(&st_stripe[s].lookups, vsp_load_relaxed(&st_stripe[s].lookups) + looked);
}

/* A stack that is not the thread's (a coroutine's, a fiber's, sigaltstack): copied from rsp up,
 * as far as it is readable, with one checked read, and walked in the copy with the same bounds
 * checks: 8 KiB first, the whole buffer (64 KiB) when the walk reached the end of that. Without a
 * free buffer, or where nothing can be read, just the pc. */
#define FOREIGN_FIRST 8192u
__attribute__((noinline, cold)) static unsigned walk_foreign(uint64_t *frames, unsigned max, unsigned skip,
                                                             uint64_t rip, uint64_t rsp, uint64_t rbp)
{
    vsp_fetch_add_relaxed(&st_foreign, 1);
    int slot;
    unsigned char *buf = vsp_load_relaxed(&checked_off) ? NULL : buf_claim(&slot);
    struct walk_ctx ctx = {0, buf ? (int)getpid() : 0, 0, 0};
    size_t want = FOREIGN_FIRST, got = buf ? checked_copy(ctx.pid, buf, rsp, want) : 0;
    unsigned n = 0, looked = 0;
    if (got < 16) {
        if (!skip)
            frames[n++] = rip;
    } else {
        for (int attempt = 0;; attempt++) {
            if (ctx.out && got == want && want < BUF_SIZE) { /* the stack goes on past the copy */
                want = BUF_SIZE;
                got += checked_copy(ctx.pid, buf + got, rsp + got, want - got);
                looked = 0;
            }
            ctx.out = 0;
            /* acquire: see vsp_walk_from_regs */
            unsigned long epoch = vsp_load_acquire(&rc_epoch);
            n = walk_core(frames, max, skip, rip, rsp, rbp, rsp + got, (uint64_t)(uintptr_t)buf - rsp, epoch, &ctx,
                          &looked);
            int more = ctx.out && got == want && want < BUF_SIZE; /* again, with the rest copied */
            if ((vsp_load_relaxed(&rc_epoch) == epoch && !more) || attempt >= 8)
                break;
            if (!more)
                vsp_fetch_add_relaxed(&st_retries, 1);
        }
        count_lookups(looked);
    }
    if (buf)
        buf_release(slot);
    return n;
}

__attribute__((used)) VSP_NO_SANITIZE unsigned vsp_walk_from_regs(uint64_t *frames, unsigned max, unsigned skip, uint64_t rip,
                                            uint64_t rsp, uint64_t rbp)
{
    if (VSP_WALK_UNLIKELY(!walk_stack.hi))
        stack_bounds();
    if (!max)
        return 0;
    if (VSP_WALK_UNLIKELY(!rc_ready())) {
        if (skip)
            return 0;
        frames[0] = rip; /* no memory for the rule cache: the pc alone */
        return 1;
    }
    const uint64_t hi = walk_stack.hi;
    if (VSP_WALK_UNLIKELY(rsp < walk_stack.lo || rsp >= hi || hi - rsp < 16))
        return walk_foreign(frames, max, skip, rip, rsp, rbp);
    if (VSP_WALK_UNLIKELY(vsp_load_relaxed(&rc_clear_pending))) /* relaxed: a request (see rc_clear) */
        rc_clear(1);
    struct walk_ctx ctx = {0, 0, 0, 0};
    unsigned n, looked = 0;
    for (int attempt = 0;; attempt++) {
        /* acquire: the walk's loads come after this; the epoch read again at the end (after the
         * walk's acquire loads) tells whether a clear overlapped the walk, which is then redone
         * (clears are rare: one per unload, or per 49,152 rules cached) */
        unsigned long epoch = vsp_load_acquire(&rc_epoch);
        n = walk_core(frames, max, skip, rip, rsp, rbp, hi, 0, epoch, &ctx, &looked);
        if (VSP_WALK_LIKELY(vsp_load_relaxed(&rc_epoch) == epoch) || attempt >= 8)
            break;
        vsp_fetch_add_relaxed(&st_retries, 1);
    }
    count_lookups(looked);
    return n;
}

__attribute__((used)) VSP_NO_SANITIZE unsigned vsp_walk_memo_from(uint64_t *frames, unsigned max, unsigned skip, struct vsp_walk_memo *m)
{
    const uint64_t rip = m->start_rip, rsp = m->start_rsp, rbp = m->start_rbp;
    /* the frames of the memo's last walk still in `frames` (walker.h): taken, as this walk may
     * write other ones */
    const int intact = m->intact == frames;
    m->intact = NULL;
    if (VSP_WALK_UNLIKELY(!walk_stack.hi))
        stack_bounds();
    const uint64_t hi = walk_stack.hi;
    if (VSP_WALK_UNLIKELY(rsp < walk_stack.lo || rsp >= hi || hi - rsp < 16 || skip + max > VSP_WALK_MEMO_LEVELS ||
                          !rc_ready() || !max))
        return vsp_walk_from_regs(frames, max, skip, rip, rsp, rbp);
    if (VSP_WALK_UNLIKELY(vsp_load_relaxed(&rc_clear_pending))) /* relaxed: a request (see rc_clear) */
        rc_clear(1);
    struct walk_ctx ctx = {0, 0, 0, 0};
    unsigned n, looked = 0, replayed = 0;
    for (int attempt = 0;; attempt++) {
        /* acquire: as in vsp_walk_from_regs; a walk redone after a clear finds the memo made
         * under the old epoch unusable */
        unsigned long epoch = vsp_load_acquire(&rc_epoch);
        n = walk_memo(frames, max, skip, rip, rsp, rbp, hi, epoch, &ctx, &looked, &replayed, m, intact && !attempt);
        if (VSP_WALK_LIKELY(vsp_load_relaxed(&rc_epoch) == epoch) || attempt >= 8)
            break;
        vsp_fetch_add_relaxed(&st_retries, 1);
    }
    count_lookups(looked);
    if (replayed) { /* relaxed: a statistic, in the thread's stripe as the lookups */
        unsigned s = walk_stack.stripe ? walk_stack.stripe - 1 : 0;
        vsp_store_relaxed(&st_stripe[s].replayed, vsp_load_relaxed(&st_stripe[s].replayed) + replayed);
    }
    return n;
}

/* The entry point takes its caller's registers as they will be after it returns: rip = its own
 * return address, rsp = just above it, rbp untouched, then tail-calls the walk (which therefore
 * returns straight to the caller). Written in assembly because no C construct gives the caller's
 * rsp and rbp whatever the optimisation level and frame-pointer setting. */
__asm__(".text\n"
        ".globl vsp_walk_stack\n"
        ".hidden vsp_walk_stack\n"
        ".type vsp_walk_stack, @function\n"
        ".p2align 4\n"
        "vsp_walk_stack:\n"
        ".cfi_startproc\n"
        "    movq (%rsp), %rcx\n"
        "    leaq 8(%rsp), %r8\n"
        "    movq %rbp, %r9\n"
        "    jmp vsp_walk_from_regs@PLT\n"
        ".cfi_endproc\n"
        ".size vsp_walk_stack, .-vsp_walk_stack\n");

/* The same through a memo: the registers go into the memo (its first three words), then the walk
 * (rcx holds m, the fourth argument). */
__asm__(".text\n"
        ".globl vsp_walk_stack_memo\n"
        ".hidden vsp_walk_stack_memo\n"
        ".type vsp_walk_stack_memo, @function\n"
        ".p2align 4\n"
        "vsp_walk_stack_memo:\n"
        ".cfi_startproc\n"
        "    movq (%rsp), %rax\n"
        "    movq %rax, 0(%rcx)\n"
        "    leaq 8(%rsp), %rax\n"
        "    movq %rax, 8(%rcx)\n"
        "    movq %rbp, 16(%rcx)\n"
        "    jmp vsp_walk_memo_from@PLT\n"
        ".cfi_endproc\n"
        ".size vsp_walk_stack_memo, .-vsp_walk_stack_memo\n");
