/* The shim's own x86-64 stack walker: what libunwind's unw_backtrace did for us, cheaper and
 * without a dependency. For each return address it finds the module (a table built with
 * dl_iterate_phdr), the FDE (the binary-search table of .eh_frame_hdr), runs the CIE's and FDE's
 * CFI program up to that address, and keeps the result, a "rule" (where the CFA is, where the
 * return address and rbp were saved), in a lock-free cache keyed by the return address; a warm
 * walk is a hash probe and two or three loads a frame. Where a module has no FDE for an address
 * (hand-written code, no unwind tables) it steps along the rbp chain.
 * Supported CFI: the subset gcc and clang emit for ordinary code (def_cfa*, offset*, restore*,
 * advance_loc*, set_loc, remember/restore_state, undefined/same_value, GNU_args_size), plus the
 * stack-realigning prologue's expressions (CFA = *(rbp + k), rbp saved at rbp + k). Anything else
 * (the PLT's and the signal trampoline's expressions, registers kept in other registers, a CFA
 * in another register) ends the walk there.
 * Must never: read memory outside [the walk's starting rsp, the top of the thread's stack) or
 * outside the mapped segment that holds a module's unwind tables — every load is bounds checked
 * and a failed check ends the walk, so garbage registers or a smashed stack end a walk early
 * instead of faulting; malloc, lock or print on the walk path (a thread's first walk excepted: it
 * asks pthread_getattr_np for the stack bounds; a rule-cache miss may call dl_iterate_phdr, which
 * takes the loader's lock, so the caller brackets walks against fork as it did libunwind's, and
 * may wait, boundedly, for another thread's rebuild of the module table).
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

#include "shim/base/atomic.h"
#include "shim/walk/walker.h"

#ifndef __x86_64__
#error "shim/walk/walker.c is the x86-64 stack walker"
#endif

#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
/* The walker reads other frames' stack slots and whole unwind sections: under ASan a read of a
 * caller's spill area would be reported as a stack overflow although it is bounds checked here. */
#define VSP_NO_SANITIZE __attribute__((no_sanitize("address", "hwaddress")))
#endif
#endif
#ifndef VSP_NO_SANITIZE
#define VSP_NO_SANITIZE
#endif

#define VSP_WALK_LIKELY(x) __builtin_expect(!!(x), 1)
#define VSP_WALK_UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef uint64_t __attribute__((may_alias, aligned(1))) u64u;
typedef uint32_t __attribute__((may_alias, aligned(1))) u32u;
typedef uint16_t __attribute__((may_alias, aligned(1))) u16u;

/* ---- statistics (slow paths only: a hit counts nothing) ------------------------------------ */
/* All relaxed, here and where they are counted: counters that order nothing. */
static unsigned long long st_misses, st_uncacheable, st_refreshes, st_fp, st_unsupported;

void vsp_walker_get_stats(struct vsp_walker_stats *out)
{
    out->rule_misses = vsp_load_relaxed(&st_misses);
    out->uncacheable = vsp_load_relaxed(&st_uncacheable);
    out->module_refreshes = vsp_load_relaxed(&st_refreshes);
    out->fp_rules = vsp_load_relaxed(&st_fp);
    out->stops_unsupported = vsp_load_relaxed(&st_unsupported);
}

/* ---- reading unwind tables ------------------------------------------------------------------ */
/* A cursor over unwind-table bytes; any read past `end` sets `bad` and reads zero. */
struct cur {
    uint64_t p, end;
    int bad;
};

VSP_NO_SANITIZE static uint64_t c_fixed(struct cur *c, unsigned n)
{
    if (c->bad || c->p > c->end || c->end - c->p < n) {
        c->bad = 1;
        return 0;
    }
    uint64_t v;
    const void *s = (const void *)(uintptr_t)c->p;
    switch (n) {
    case 1: v = *(const uint8_t *)s; break;
    case 2: v = *(const u16u *)s; break;
    case 4: v = *(const u32u *)s; break;
    default: v = *(const u64u *)s; break;
    }
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

/* ---- the module table ------------------------------------------------------------------------ */
struct mod {
    uint64_t lo, hi;           /* span of the PT_LOAD segments */
    uint64_t hdr, hdr_end;     /* .eh_frame_hdr (PT_GNU_EH_FRAME), 0 if none */
    uint64_t eh_lo, eh_hi;     /* the PT_LOAD segment that holds .eh_frame: FDE/CIE reads stay in it */
};

#define MAX_MODS 2048
/* The published table, sorted by lo: two copies, each under a seqlock of its own (odd while it is
 * rewritten), and mods_cur says which is current. The one writer rewrites the other copy and then
 * flips mods_cur, so a reader never waits for a writer (one preempted mid-rewrite included): at
 * worst it read the old copy as it was being rewritten, sees its sequence moved, and retries on the
 * current one. Fields are written with release stores and read with acquire loads (see
 * mods_publish and mod_find). */
static struct mod mods[2][MAX_MODS];
static unsigned nmods[2];
static unsigned long mods_seq[2];
static unsigned mods_cur;
static int mods_valid;
/* Writers only: one rebuilds at a time (trylock; a walker that loses just uses the current
 * table), into `scratch`, then copies it into `mods` inside the seqlock's odd window. */
static int mods_lock;
static struct mod scratch[MAX_MODS];
static unsigned nscratch;
static unsigned long long seen_adds, seen_subs;

/* Rules are tagged with this generation; moving it turns every cached rule into a miss. 15 bits,
 * never 0. */
static unsigned rule_gen = 1;

static void bump_rule_gen(void)
{
    unsigned g = vsp_load_relaxed(&rule_gen), n;
    do {
        n = (g + 1) & 0x7fff;
        if (!n)
            n = 1;
        /* relaxed: the generation guards no other data; a walk that still sees the old one
         * behaves as a walk that started just before the change */
    } while (!vsp_cas_weak_relaxed(&rule_gen, &g, n));
}

void vsp_walker_atfork_child(void)
{
    /* the child has one thread: a rebuild another thread had under way in the parent is gone.
     * Relaxed throughout: no other thread to order anything for. */
    vsp_store_relaxed(&mods_lock, 0);
    for (int i = 0; i < 2; i++)
        if (vsp_load_relaxed(&mods_seq[i]) & 1)
            vsp_store_relaxed(&mods_seq[i], vsp_load_relaxed(&mods_seq[i]) + 1);
    vsp_store_relaxed(&mods_valid, 0);
}

void vsp_walker_modules_changed(void)
{
    bump_rule_gen();
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

static int collect_mod(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (nscratch >= MAX_MODS)
        return 1;
    struct mod m = {UINT64_MAX, 0, 0, 0, 0, 0};
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
    if (eh) {
        uint64_t hdr = info->dlpi_addr + eh->p_vaddr, hdr_end = hdr + eh->p_memsz;
        int hdr_mapped = 0;
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_filesz;
            if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) && hdr >= s && hdr_end <= e)
                hdr_mapped = 1;
        }
        if (hdr_mapped) {
            /* version 1, then the encoded pointer to .eh_frame */
            struct cur c = {hdr, hdr_end, 0};
            uint8_t ver = (uint8_t)c_fixed(&c, 1), ptr_enc = (uint8_t)c_fixed(&c, 1);
            c_fixed(&c, 2);
            uint64_t ehf = c_enc(&c, ptr_enc, hdr);
            if (!c.bad && ver == 1) {
                for (int i = 0; i < info->dlpi_phnum; i++) {
                    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                    uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_filesz;
                    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) && ehf >= s && ehf < e) {
                        m.eh_lo = s;
                        m.eh_hi = e;
                    }
                }
                if (m.eh_hi) {
                    m.hdr = hdr;
                    m.hdr_end = hdr_end;
                }
            }
        }
    }
    scratch[nscratch++] = m;
    return 0;
}

static void mods_publish(void)
{
    /* insertion sort by lo: a few hundred entries, only when modules came or went */
    for (unsigned i = 1; i < nscratch; i++) {
        struct mod m = scratch[i];
        unsigned j = i;
        while (j > 0 && scratch[j - 1].lo > m.lo) {
            scratch[j] = scratch[j - 1];
            j--;
        }
        scratch[j] = m;
    }
    unsigned w = 1 - vsp_load_relaxed(&mods_cur); /* relaxed: only writers change it, under mods_lock */
    unsigned long s = vsp_load_relaxed(&mods_seq[w]);
    vsp_store_relaxed(&mods_seq[w], s + 1);
    /* release stores (no fences: TSan does not model them): each table write is ordered after the
     * odd sequence number, so a reader that acquires any of the new values then reads the
     * sequence as odd or moved, and discards what it read */
    for (unsigned i = 0; i < nscratch; i++) {
        vsp_store_release(&mods[w][i].lo, scratch[i].lo);
        vsp_store_release(&mods[w][i].hi, scratch[i].hi);
        vsp_store_release(&mods[w][i].hdr, scratch[i].hdr);
        vsp_store_release(&mods[w][i].hdr_end, scratch[i].hdr_end);
        vsp_store_release(&mods[w][i].eh_lo, scratch[i].eh_lo);
        vsp_store_release(&mods[w][i].eh_hi, scratch[i].eh_hi);
    }
    vsp_store_release(&nmods[w], nscratch);
    /* release: the copy is complete before a reader can see its even sequence number */
    vsp_store_release(&mods_seq[w], s + 2);
    /* release: ... and before a reader that acquires mods_cur turns to it */
    vsp_store_release(&mods_cur, w);
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
    as.ok = 0;
    dl_iterate_phdr(read_adds_subs, &as);
    dl_iterate_phdr(collect_mod, NULL);
    mods_publish();
    if (as.ok && as.subs != vsp_load_relaxed(&seen_subs))
        bump_rule_gen(); /* something was unloaded: its addresses may now hold other code */
    vsp_store_relaxed(&seen_adds, as.adds);
    vsp_store_relaxed(&seen_subs, as.subs);
    vsp_store_relaxed(&mods_valid, as.ok);
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
        const struct mod *t = mods[c];
        unsigned n = vsp_load_acquire(&nmods[c]), lo = 0, hi = n > MAX_MODS ? MAX_MODS : n;
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
            out->eh_lo = vsp_load_acquire(&m->eh_lo);
            out->eh_hi = vsp_load_acquire(&m->eh_hi);
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
 * kind (3), and the generation (15 bits, never 0, so 0 means "no rule"). */
static int fits(int64_t v, unsigned bits)
{
    int64_t lim = (int64_t)1 << (bits - 1);
    return v >= -lim && v < lim;
}

static uint64_t rule_pack(const struct rule *r, unsigned gen)
{
    if (!fits(r->cfa_off + r->ra_off, 24) || (r->ra_off & 7) || !fits(r->ra_off / 8, 8) || (r->rbp_off & 7) ||
        !fits(r->rbp_off / 8, 12) || !gen)
        return 0;
    return ((uint64_t)(r->cfa_off + r->ra_off) << 40) | ((uint64_t)(r->ra_off / 8) & 0xff) << 32 |
           ((uint64_t)(r->rbp_off / 8) & 0xfff) << 20 | (uint64_t)r->rbp_kind << 18 | (uint64_t)r->kind << 15 |
           (gen & 0x7fff);
}

/* The rule cache: open addressing, keyed by return address. A key, once set, never changes; its
 * rule word may be rewritten (a newer generation) but always describes that key. Both words are
 * single self-contained values (no other data is published through them), so relaxed loads and
 * stores suffice: a reader that sees the key before the rule sees no valid rule and computes it
 * itself. */
#define RC_BITS 14
#define RC_PROBES 8
/* keys and rules in arrays of their own: the index scales by 8 in the load's addressing mode */
static uint64_t rc_key[1u << RC_BITS], rc_rule[1u << RC_BITS];

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

static int parse_cie(uint64_t at, const struct mod *m, struct cie *ci)
{
    struct cur c = {at, m->eh_hi, 0};
    if (at < m->eh_lo)
        return 0;
    uint64_t len = c_fixed(&c, 4);
    if (len == 0xffffffffu)
        len = c_fixed(&c, 8);
    if (c.bad || len > m->eh_hi - c.p)
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
static int expr_breg6(uint64_t p, uint64_t len, uint64_t end, int64_t *k, int *deref)
{
    struct cur e = {p, p + len, 0};
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

#define STATE_DEPTH 8
/* Run CFI instructions [p, end) from loc, stopping before the first row that starts past pc.
 * `init` is the CIE's row (for DW_CFA_restore), NULL while running the CIE itself. 0 on
 * malformed or unsupported input. */
static int run_cfi(uint64_t p, uint64_t end, const struct cie *ci, uint64_t loc, uint64_t pc, struct row *r,
                   const struct row *init, uint64_t datarel)
{
    struct row stack[STATE_DEPTH];
    unsigned depth = 0;
    struct cur c = {p, end, 0};
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
            if (!c.bad && expr_breg6(c.p, len, c.end, &k, &deref) && deref) {
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
            if (!c.bad && reg == REG_RBP && expr_breg6(c.p, len, c.end, &k, &deref) && !deref)
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

/* The rule for return address ra, from the unwind tables (not cached). *cacheable is cleared for
 * an answer that may change (no module yet). */
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

__attribute__((noinline, cold)) static void rule_compute(uint64_t ra, int *refreshed, struct rule *out,
                                                         int *cacheable)
{
    uint64_t pc = ra - 1; /* inside the call instruction: the caller's row, even at a function's end */
    struct mod m = {0, 0, 0, 0, 0, 0};
    *cacheable = 1;
    memset(out, 0, sizeof *out);
    if (!*refreshed) {
        *refreshed = 1;
        mods_refresh();
    }
    if (!mod_find(pc, &m) && *refreshed == 1) {
        /* Another thread is rebuilding the table (the first walks of a multi-threaded start, or
         * a library just loaded): the address is probably in what it publishes. Wait for it,
         * boundedly (a rebuild takes microseconds), rather than guess with the rbp chain. The
         * lock's release store pairs with our acquire load; the table itself is seqlocked. Then
         * look again (the rebuild may have ended just before we looked at the lock); at most
         * once a walk, so a pc in no module at all (JIT code) costs two module checks a walk. */
        *refreshed = 2;
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
    if (!m.hdr)
        return;
    /* .eh_frame_hdr: version, eh_frame_ptr_enc, fde_count_enc, table_enc, eh_frame_ptr,
     * fde_count, then (initial location, FDE address) pairs sorted by location */
    struct cur c = {m.hdr, m.hdr_end, 0};
    c_fixed(&c, 1);
    uint8_t ptr_enc = (uint8_t)c_fixed(&c, 1), cnt_enc = (uint8_t)c_fixed(&c, 1),
            tab_enc = (uint8_t)c_fixed(&c, 1);
    c_enc(&c, ptr_enc, m.hdr);
    uint64_t count = c_enc(&c, cnt_enc, m.hdr);
    if (c.bad || tab_enc != 0x3b || count == 0 || count > (m.hdr_end - c.p) / 8)
        return; /* datarel sdata4 is what every linker writes; anything else: the rbp chain */
    uint64_t tab = c.p, lo = 0, hi = count;
    while (lo < hi) { /* first entry whose location is past pc */
        uint64_t mid = lo + (hi - lo) / 2;
        uint64_t loc = m.hdr + (uint64_t)(int64_t)(int32_t) * (const u32u *)(uintptr_t)(tab + mid * 8);
        if (loc <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return;
    uint64_t fde = m.hdr + (uint64_t)(int64_t)(int32_t) * (const u32u *)(uintptr_t)(tab + (lo - 1) * 8 + 4);
    if (fde < m.eh_lo || fde >= m.eh_hi)
        goto bad;
    struct cur f = {fde, m.eh_hi, 0};
    uint64_t len = c_fixed(&f, 4);
    if (len == 0xffffffffu)
        len = c_fixed(&f, 8);
    if (f.bad || len < 4 || len > m.eh_hi - f.p)
        goto bad;
    f.end = f.p + len;
    uint64_t id_at = f.p, cie_off = c_fixed(&f, 4);
    if (!cie_off || cie_off > id_at)
        goto bad;
    struct cie ci;
    if (!parse_cie(id_at - cie_off, &m, &ci))
        goto bad;
    uint64_t begin = c_enc(&f, ci.fde_enc, m.hdr);
    uint64_t range = c_enc(&f, ci.fde_enc & 0x0f, m.hdr);
    if (f.bad)
        goto bad;
    if (pc < begin || pc - begin >= range)
        return; /* a gap between FDEs: the rbp chain */
    if (ci.has_z) {
        uint64_t aug = c_uleb(&f);
        if (f.bad || aug > f.end - f.p)
            goto bad;
        f.p += aug;
    }
    if (f.bad || f.p > f.end || ci.signal)
        goto bad; /* a signal frame: its rules are expressions over the sigcontext */
    struct row init = {REG_RSP, 8, 0, 0, 0, 0};
    if (!run_cfi(ci.instr, ci.instr_end, &ci, begin, UINT64_MAX, &init, NULL, m.hdr))
        goto bad;
    struct row r = init;
    if (!run_cfi(f.p, f.end, &ci, begin, pc, &r, &init, m.hdr))
        goto bad;
    if (r.ra_kind == 4 || r.ra_kind == 0) {
        /* undefined return address (or never described): the outermost frame */
        out->kind = K_END;
        out->fp = 0;
        return;
    }
    if (r.ra_kind != 1 || r.rbp_kind == 3 || r.cfa_reg == -2)
        goto bad;
    out->kind = r.cfa_reg == REG_RSP ? K_CFA_RSP : r.cfa_reg == REG_RBP ? K_CFA_RBP : K_CFA_DEREF_RBP;
    out->cfa_off = r.cfa_off;
    out->ra_off = r.ra_off;
    out->rbp_kind = r.rbp_kind == 1 ? RBP_AT_CFA : r.rbp_kind == 2 ? RBP_AT_RBP : RBP_SAME;
    out->rbp_off = r.rbp_off;
    out->fp = 0;
    return;
bad:
    vsp_fetch_add_relaxed(&st_unsupported, 1);
    memset(out, 0, sizeof *out);
    out->kind = K_BAD;
}

/* A miss of the walk's one-probe fast path: look further, else compute the rule (and cache it
 * when it can be). Returns the packed rule; 0 (kind K_NONE) when it cannot be packed, which ends
 * the walk (a frame larger than 8 MiB, rbp saved more than 16 KiB from the CFA). */
__attribute__((noinline)) static uint64_t rule_slow(uint64_t ra, unsigned gen, int *refreshed)
{
    uint64_t h = ra; /* the index is the return address's low bits: see the walk's fast path */
    int free_slot = -1;
    for (unsigned i = 0; i < RC_PROBES; i++) {
        unsigned s = (unsigned)(h + i) & ((1u << RC_BITS) - 1);
        uint64_t k = vsp_load_relaxed(&rc_key[s]); /* relaxed: see the cache's comment */
        if (k == ra) {
            uint64_t p = vsp_load_relaxed(&rc_rule[s]);
            if ((p & 0x7fff) == gen)
                return p;
            free_slot = (int)s; /* ours, stale or not yet written */
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
    rule_compute(ra, refreshed, &r, &cacheable);
    if (r.fp)
        vsp_fetch_add_relaxed(&st_fp, 1);
    uint64_t packed = rule_pack(&r, gen);
    if (!packed) {
        vsp_fetch_add_relaxed(&st_unsupported, 1);
        return 0;
    }
    if (!cacheable || free_slot < 0) { /* no module yet / the probe window is full: computed each time */
        vsp_fetch_add_relaxed(&st_uncacheable, 1);
        return packed;
    }
    uint64_t expect = 0;
    /* relaxed: the key is self-contained; a failed exchange leaves the current key in expect */
    if (vsp_cas_relaxed(&rc_key[free_slot], &expect, ra) || expect == ra)
        vsp_store_relaxed(&rc_rule[free_slot], packed);
    return packed;
}

/* ---- the walk -------------------------------------------------------------------------------- */
/* The thread's stack, [lo, hi), asked once (pthread_getattr_np: on the main thread it reads
 * /proc/self/maps); hi == 0 until asked, lo == hi == 1 when it failed. */
static __thread struct {
    uint64_t lo, hi;
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
    if (pthread_getattr_np(pthread_self(), &a) != 0)
        return;
    if (pthread_attr_getstack(&a, &addr, &size) == 0 && size) {
        walk_stack.lo = (uint64_t)(uintptr_t)addr;
        walk_stack.hi = walk_stack.lo + size;
    }
    pthread_attr_destroy(&a);
}

VSP_NO_SANITIZE unsigned vsp_walk_from_regs(uint64_t *frames, unsigned max, unsigned skip, uint64_t rip,
                                            uint64_t rsp, uint64_t rbp)
{
    if (VSP_WALK_UNLIKELY(!walk_stack.hi))
        stack_bounds();
    if (!max)
        return 0;
    /* readable: [lo, hi) = [the starting rsp, the top of the stack), as a last valid 8-byte slot */
    const uint64_t lo = rsp, hi = walk_stack.hi, last = hi - 8;
    unsigned n = 0;
    if (rsp < walk_stack.lo || rsp >= hi || hi - rsp < 16) { /* on another stack: not walked */
        if (!skip)
            frames[n++] = rip;
        return n;
    }
    unsigned gen = vsp_load_relaxed(&rule_gen); /* relaxed: see bump_rule_gen */
    int refreshed = 0;
    /* every step moves rsp strictly up the stack, so the loop ends; the cap is belt and braces */
    for (unsigned steps = 0; steps < 65536 && rip; steps++) {
        if (skip) {
            skip--;
        } else {
            frames[n++] = rip;
            if (n >= max)
                break;
        }
        /* the fast path: the rule sits in the first slot probed (relaxed: see the cache). The index
         * is the return address's low bits, one AND on the walk's dependency chain (a mixing hash
         * cost 15% of a warm walk); return addresses' low bits spread well, and a collision only
         * sends that frame to the probe in rule_slow */
        unsigned slot = (unsigned)rip & ((1u << RC_BITS) - 1);
        uint64_t p = vsp_load_relaxed(&rc_rule[slot]);
        if (VSP_WALK_UNLIKELY(vsp_load_relaxed(&rc_key[slot]) != rip || (p & 0x7fff) != gen))
            p = rule_slow(rip, gen, &refreshed);
        unsigned kind = (p >> 15) & 7;
        uint64_t base, a;
        if (VSP_WALK_LIKELY(kind == K_CFA_RSP)) {
            base = rsp;
        } else if (kind == K_CFA_RBP) {
            base = rbp;
        } else if (kind == K_CFA_DEREF_RBP) {
            /* CFA = *(rbp + k): the base is the loaded value, then the offsets as usual (k is the
             * rule's CFA offset: return-address location - return-address offset) */
            int64_t cfa_off = ((int64_t)p >> 40) - (int64_t)(int8_t)(p >> 32) * 8;
            a = rbp + (uint64_t)cfa_off;
            if (a < lo || a > last)
                break;
            base = *(const u64u *)(uintptr_t)a - (uint64_t)cfa_off; /* so that base + offsets = CFA + ra offset */
        } else {
            break; /* outermost, not followed, or not packable */
        }
        a = base + (uint64_t)((int64_t)p >> 40); /* where the return address is */
        if (a < lo || a > last)
            break;
        uint64_t next = *(const u64u *)(uintptr_t)a;
        uint64_t cfa = a - (uint64_t)((int64_t)(int8_t)(p >> 32) * 8);
        if (cfa <= rsp || cfa > hi) /* a caller's frame lies above its callee's */
            break;
        unsigned rbp_kind = (p >> 18) & 3;
        if (rbp_kind != RBP_SAME) {
            a = (rbp_kind == RBP_AT_CFA ? cfa : rbp) + (uint64_t)(((int64_t)(p << 32) >> 52) * 8);
            if (a < lo || a > last)
                break;
            rbp = *(const u64u *)(uintptr_t)a;
        }
        rip = next;
        rsp = cfa;
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
