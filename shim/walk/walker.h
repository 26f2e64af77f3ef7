/* The shim's own x86-64 stack walker (shim/walk/walker.c): return addresses from the unwind tables
 * (.eh_frame_hdr / .eh_frame), frame pointers where there are none. Lock-free, malloc-free and
 * stdio-free after a thread's first walk; reads the thread's stack bounds checked, everything else
 * (unwind tables, a coroutine's stack) through checked copies. */
#ifndef VSP_WALKER_H
#define VSP_WALKER_H

#include <stdint.h>

/* Walk the calling thread's stack. frames[0] is the return address of this very call (an address
 * inside the function that called vsp_walk_stack), frames[1] the return address into that
 * function's caller, and so on outward, innermost first: unw_backtrace's convention (libunwind
 * 1.6's first entry is likewise the return address into the function that called it), so the
 * two lists agree entry for entry from frames[1] on when called from the same function.
 * `skip` entries are dropped from the front, then at most `max` are stored; returns how many
 * were stored (a walk costs the frames it stores and skips, not the stack's depth). The walk ends
 * at the outermost frame (return address undefined: _start, clone3, a coroutine's entry), at a
 * frame it does not follow (a signal trampoline, a PLT entry, CFI it does not support, a frame
 * over 8 MiB), or where a read would leave [the caller's rsp, the top of the thread's stack). A
 * thread running on a stack that is not its own (a coroutine's, a fiber's, sigaltstack) is walked
 * in a checked copy of that stack from rsp up (as much as is readable, at most 64 KiB). Unwind
 * tables are read only through checked copies: an unreadable page ends that frame's table lookup
 * (the rbp chain is tried), never the process. A thread's first walk asks pthread_getattr_np for
 * its stack bounds (which, on the main thread, reads /proc/self/maps with stdio and malloc); after
 * that a walk takes no lock and allocates nothing, except that a rule-cache miss calls
 * dl_iterate_phdr (the loader's lock) once per walk to notice modules that came or went, and
 * process_vm_readv to read the tables. The walker takes the shim's fork bracket
 * (vsp_walk_enter/leave) itself around those (a walk over cached rules runs outside it). */
unsigned vsp_walk_stack(uint64_t *frames, unsigned max, unsigned skip);

/* The same from given registers (rip: a return address, or the pc of a frame whose CFA rule is
 * then looked up as for the return address rip; rsp, rbp: that frame's values). The walk reads
 * only [rsp, top of the calling thread's stack) when rsp is on that stack, else a checked copy of
 * what is readable from rsp up. For walks from a context the caller captured on this thread. */
unsigned vsp_walk_from_regs(uint64_t *frames, unsigned max, unsigned skip, uint64_t rip, uint64_t rsp,
                            uint64_t rbp);

/* The walk memo (issue 22): what the last walk through a memo found, level by level (a level: a
 * frame's rip, rsp and rbp, and where its step loaded the caller's return address and rbp from).
 * A walk that reaches a level the memo has (same rsp and rip, and same rbp where a later step reads
 * it) replays the memo from there, checking only that each return address and saved rbp still
 * holds what it held (loads that do not depend on each other), instead of looking up a rule and
 * computing a frame at each level; at the first difference it walks on as usual. The memo holds
 * nothing but a cache: a replayed walk gives exactly the frames the walk would. Valid for walks of
 * one thread's stack (same top), while no rule-cache clear has run since it was made; a level whose
 * rule was a guess (the rbp chain for a pc in no module yet, or behind an unreadable table) is
 * walked again each time, so the tables' rule takes over once they can be read. The caller
 * owns it: one walk at a time per memo (the shim keeps one in each capture buffer). Zeroed memory
 * is an empty memo. */
#define VSP_WALK_MEMO_LEVELS 288 /* the deepest walk: 256 kept, 16 skipped, 16 spare */
struct vsp_walk_level {
    uint64_t rip, rsp, rbp, ra_at, rbp_at, flags;
};
/* The repeat check of a memo whose last walk repeated the one before it (a stable stack): every
 * load a full replay would compare, as (address, value) pairs in one array, and the frames; the
 * next walk from the same registers that finds every slot unchanged gives those frames at once, a
 * load and compare a slot instead of a replay's per-level work (issue 22). Built for walks of up
 * to VSP_WALK_FAST_LEVELS levels that ended by their rule or at the depth asked. */
#define VSP_WALK_FAST_LEVELS 96
struct vsp_walk_fast {
    unsigned ok, nchk, nframes; /* nchk: a multiple of 4, padded with checks of `zero` */
    uint64_t zero;
    struct {
        uint64_t at, val;
    } chk[2 * VSP_WALK_FAST_LEVELS + 4];
    uint64_t frames[VSP_WALK_FAST_LEVELS];
};
struct vsp_walk_memo {
    uint64_t start_rip, start_rsp, start_rbp; /* the entry point's registers: offsets 0, 8 and 16 */
    unsigned long epoch;
    uint64_t hi;
    unsigned n;
    /* same: the last walk gave exactly the frames of the one before it through this memo (same
     * skip and max, every kept level replayed in place); the caller may keep what it derived from
     * them. skip, total: the last walk's skip and skip + max. */
    unsigned same, skip, total;
    /* intact: set by the caller to the buffer of the last walk when it left those frames there
     * untouched (it only read them), until its next walk through this memo; a walk that repeats
     * the last one then writes nothing (issue 22: the copy of 35 frames was a fifth of a repeat).
     * Each walk takes it (and clears it) before writing a frame. */
    uint64_t *intact;
    struct vsp_walk_fast fast; /* valid while fast.ok, for the memo as it is */
    struct vsp_walk_level lv[2][VSP_WALK_MEMO_LEVELS]; /* the memo; staging for a walk */
};
/* vsp_walk_stack through a memo. */
unsigned vsp_walk_stack_memo(uint64_t *frames, unsigned max, unsigned skip, struct vsp_walk_memo *m);

/* Optional: read the module tables now (else the first walk that needs them does). 0 or -errno. */
int vsp_walker_init(void);

/* Modules were unloaded (dlclose; the shim's dl_gen moved): cached rules may describe code that is
 * gone. Cheap; safe to call concurrently with walks (they recompute what they use next). */
void vsp_walker_modules_changed(void);

/* In a fork child (from the shim's atfork_child): a module-table rebuild another thread of the
 * parent had under way is abandoned, so the child can rebuild. */
void vsp_walker_atfork_child(void);

/* Forget the calling thread's stack bounds (a thread that switched stacks, or a test). */
void vsp_walker_thread_reset(void);

/* Walker statistics, for tests and benchmarks (relaxed counters: approximate under concurrency).
 * lookups: frames looked up in the rule cache (every frame of every walk); rule_misses: rules
 * computed from the unwind tables (so the cache's hit rate is 1 - rule_misses / lookups);
 * uncacheable: rules computed but not kept (no module, an unreadable table, a full probe window);
 * cache_clears: the rule cache emptied (modules unloaded, or three quarters full); unreadable: rule
 * computations that met an unreadable table page; foreign_walks: walks of a stack not the
 * thread's; retries: walks redone because a clear overlapped them; no_buffer: checked reads that
 * found every buffer taken; modules: the most modules the table has held; replayed: levels of
 * walks replayed from a memo (not looked up: not in lookups). */
struct vsp_walker_stats {
    unsigned long long rule_misses, uncacheable, module_refreshes, fp_rules, stops_unsupported;
    unsigned long long replayed;
    unsigned long long lookups, cache_clears, unreadable, foreign_walks, retries, no_buffer;
    unsigned modules;
};
void vsp_walker_get_stats(struct vsp_walker_stats *out);

#endif
