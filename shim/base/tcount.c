/* Per-thread event counters (see tcount.h). */
#include "shim/base/tcount.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "shim/base/atomic.h"

#define STRIPES VSP_TC_STRIPES

/* mapped at the first claim (not in the library's bss: a process that never counts pays nothing) */
static struct vsp_tstripe *stripes;
static struct vsp_tstripe shared = {.shared = 1, .index = -1};
static unsigned high; /* stripes [0, high) have been claimed at least once */
__thread struct vsp_tstripe *vsp_tc_mine __attribute__((tls_model("initial-exec")));
static __thread int exited __attribute__((tls_model("initial-exec")));

/* The key whose destructor gives a stripe back: created once; a key past the thread descriptor's
 * own slots (32 in glibc) would make pthread_setspecific allocate, so such a key is not used and
 * stripes are then kept for good by their threads (the shared stripe takes the rest). */
enum { KEY_NONE, KEY_MAKING, KEY_OK, KEY_NO };
static int key_state;
static pthread_key_t key;

static void (*at_exit[4])(void);

void vsp_tc_at_exit(void (*fn)(void))
{
    for (int i = 0; i < 4; i++) {
        void (*none)(void) = NULL;
        if (vsp_load_acquire(&at_exit[i]) == fn)
            return;
        /* release: what fn uses is set up before another thread's exit can call it */
        if (__atomic_compare_exchange_n(&at_exit[i], &none, fn, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            return;
    }
}

static void give_back(void *unused)
{
    (void)unused;
    for (int i = 0; i < 4; i++) {
        void (*fn)(void) = vsp_load_acquire(&at_exit[i]); /* acquire: pairs with the registration */
        if (fn)
            fn();
    }
    struct vsp_tstripe *s = vsp_tc_mine;
    vsp_tc_mine = &shared; /* counts made after this (a later destructor's CUDA call) are shared */
    exited = 1;
    if (s && s != &shared)
        vsp_store_release(&s->owner, 0); /* release: our adds come before the next owner's */
}

static int key_ready(void)
{
    int st = vsp_load_acquire(&key_state); /* acquire: pairs with the release below (key) */
    if (st == KEY_NONE && vsp_cas_acq_rel(&key_state, &st, KEY_MAKING)) {
        int ok = pthread_key_create(&key, give_back) == 0 && (unsigned)key < 32;
        vsp_store_release(&key_state, ok ? KEY_OK : KEY_NO);
        return ok;
    }
    return st == KEY_OK; /* another thread is making it: this one keeps its stripe for good */
}

struct vsp_tstripe *vsp_tc_claim(void)
{
    if (exited)
        return vsp_tc_mine = &shared;
    struct vsp_tstripe *st = vsp_load_acquire(&stripes); /* acquire: pairs with the CAS below */
    if (!st) {
        void *m = mmap(NULL, STRIPES * sizeof *stripes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
             *none = NULL;
        /* release: the zeroed stripes before their pointer; a loser gives its mapping back */
        if (m != MAP_FAILED &&
            !__atomic_compare_exchange_n((void **)&stripes, &none, m, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            munmap(m, STRIPES * sizeof *stripes);
        st = vsp_load_acquire(&stripes);
        if (!st)
            return vsp_tc_mine = &shared;
    }
    int with_key = key_ready();
    for (unsigned i = 0; i < STRIPES; i++) {
        int free_ = 0;
        /* acquire: the previous owner's adds happen before ours (pairs with give_back's release) */
        if (!vsp_load_relaxed(&st[i].owner) && vsp_cas_acquire(&st[i].owner, &free_, 1)) {
            unsigned h = vsp_load_relaxed(&high);
            while (h < i + 1 && !vsp_cas_weak_relaxed(&high, &h, i + 1)) {
            }
            st[i].index = (int)i;
            if (with_key)
                pthread_setspecific(key, &st[i]); /* non-NULL: the destructor runs */
            return vsp_tc_mine = &st[i];
        }
    }
    return vsp_tc_mine = &shared;
}

static void add_all(struct vsp_tcounts *out, const struct vsp_tcounts *c)
{
    out->allocations += vsp_load_relaxed(&c->allocations);
    out->frees += vsp_load_relaxed(&c->frees);
    out->failed += vsp_load_relaxed(&c->failed);
    out->host_allocations += vsp_load_relaxed(&c->host_allocations);
    out->live_count += vsp_load_relaxed(&c->live_count);
    out->untracked += vsp_load_relaxed(&c->untracked);
    out->nested += vsp_load_relaxed(&c->nested);
    for (int a = 0; a < VSP_API_COUNT_; a++)
        out->by_api[a] += vsp_load_relaxed(&c->by_api[a]);
}

void vsp_tc_sum(struct vsp_tcounts *out)
{
    memset(out, 0, sizeof *out);
    add_all(out, &shared.c);
    struct vsp_tstripe *st = vsp_load_acquire(&stripes);
    unsigned h = vsp_load_relaxed(&high);
    for (unsigned i = 0; st && i < h && i < STRIPES; i++)
        add_all(out, &st[i].c);
}

void vsp_tc_reset(void)
{
    unsigned h = high;
    for (unsigned i = 0; stripes && i < h && i < STRIPES; i++)
        memset(&stripes[i], 0, sizeof stripes[i]);
    memset(&shared.c, 0, sizeof shared.c);
    high = 0;
    exited = 0;
    vsp_tc_mine = NULL; /* claimed again at the next count; the key's value is cleared with it */
    if (key_state == KEY_OK)
        pthread_setspecific(key, NULL);
}
