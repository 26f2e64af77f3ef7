/* Lock-free multi-producer ring in the trace file's shared mapping (see ring.h for the contract,
 * include/vramspy/trace_format.h for the layout). Writers reserve space with a CAS on header.head,
 * fill the record, and publish it with a release store of its seq word. A writer that sees the ring
 * more than half full tries to become the drainer (a private try-flag, never waited on) and copies
 * the committed prefix into the log with pwrite, then advances header.tail.
 * Must never: take a lock, call malloc or stdio, or block except when the ring is full in wait mode. */
#include "shim/base/ring.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/tcount.h"

#define REC_ALIGN 8u
#define VSP_UNLIKELY_RING(x) __builtin_expect(!!(x), 0)

static inline uint64_t *seq_at(struct vsp_ring *r, uint64_t pos)
{
    return (uint64_t *)(r->base + (pos & r->mask));
}

static unsigned attach_gen;

void vsp_ring_attach(struct vsp_ring *r, struct vsp_file_header *hdr, int fd, int on_full)
{
    /* relaxed: only distinctness matters (a batch kept by a thread from an earlier attachment,
     * a forked child's new trace, is dropped without being touched). */
    r->gen = vsp_fetch_add_relaxed(&attach_gen, 1) + 1;
    r->meta_pos = 0;
    r->hdr = hdr;
    r->base = (unsigned char *)hdr + hdr->ring_offset;
    r->size = hdr->ring_size;
    r->mask = hdr->ring_size - 1;
    r->fd = fd;
    r->on_full = on_full;
    r->flushing = 0;
    r->failed = 0;
    r->prepare_write = NULL;
    r->mark_due = 0;
    r->marking = 0;
    r->seqmarks = (hdr->flags & VSP_FLAG_SEQMARKS) != 0;
    r->post_limit = 0;
}

/* The system call itself, not libc's pwrite: that one is a cancellation point (a program that
 * cancels a thread draining inside a hook would leave the drain flag taken), and a sanitizer's
 * pwrite would check the ring bytes as an ordinary read, racing with owners' atomic updates of
 * open batches' state words (which only ever change a word the drainer does not copy yet). */
static ssize_t sys_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    long n = syscall(SYS_pwrite64, fd, buf, len, (long)off);
    return (ssize_t)n;
}

static int pwrite_all(int fd, const unsigned char *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = sys_pwrite(fd, buf, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* A batch's final act: committed with the length it was reserved with (readers take the count of
 * coded bytes from its state word). */
static void commit_record(struct vsp_rec_hdr *h, uint64_t pos)
{
    /* release: the batch's final state word and every event byte are visible before the record
     * reads as committed (pairs with the acquire in committed_end and in readers). */
    vsp_store_release(&h->seq, pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED);
}

/* Sets CLOSED on the open batch at pos (the owner's close or the drainer's) while its owner is not
 * appending: 1 when this call closed it, so the caller commits it; 0 when it was closed already
 * (whoever closed it commits) or the owner is mid-append (WRITING: the drainer tries again at its
 * next pass, a few tens of nanoseconds later for an owner that is running). The state word has one
 * writer at a time: the owner between its claim (the CAS that sets WRITING) and its count (a plain
 * store, which clears it), whoever sets CLOSED otherwise; so an owner's count never overwrites a
 * close, and exactly one side commits. Issue 22: the owner's count was a second CAS. */
static int batch_close_word(struct vsp_rec_batch *b, uint64_t pos)
{
    uint64_t s = vsp_load_relaxed(&b->state);
    do {
        if ((s & (VSP_BATCH_CLOSED | VSP_BATCH_WRITING)) || (s & VSP_BATCH_TAG_MASK) != VSP_BATCH_TAG(pos))
            return 0;
        /* acq_rel: acquire pairs with the owner's release when it counted its last event, so
         * the bytes the drainer then copies are whole; release orders nothing of ours. */
    } while (!vsp_cas_acq_rel(&b->state, &s, s | VSP_BATCH_CLOSED));
    return 1;
}

/* The drainer met a reserved record at pos: if it is an open batch, close it. Returns 1 when the
 * record is now committed (the drainer may copy it), 0 when it has to wait. */
static int close_batch(struct vsp_ring *r, uint64_t pos)
{
    struct vsp_rec_hdr *h = (struct vsp_rec_hdr *)seq_at(r, pos);
    if (h->type != VSP_REC_BATCH || h->len < VSP_BATCH_MIN_BYTES || h->len > VSP_BATCH_MAX_BYTES)
        return 0;
    if (!batch_close_word((struct vsp_rec_batch *)(h + 1), pos))
        return 0;
    commit_record(h, pos);
    return 1;
}

/* Walk committed records from `from`; return the end of the contiguous committed run. */
static uint64_t committed_end(struct vsp_ring *r, uint64_t from, uint64_t head)
{
    uint64_t pos = from;
    while (pos < head && pos - from < r->size) {
        /* acquire: pairs with the writer's release store of the seq word in vsp_ring_commit (and
         * of a pad word in reserve), so the record bytes we then copy are the complete ones. */
        uint64_t seq = vsp_load_acquire(seq_at(r, pos));
        if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED | VSP_SEQ_PAD)) {
            pos = (pos | r->mask) + 1; /* next lap boundary */
        } else if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED)) {
            const struct vsp_rec_hdr *h = (const struct vsp_rec_hdr *)seq_at(r, pos);
            uint32_t len = h->len;
            if (len < sizeof *h || (len & (REC_ALIGN - 1)) || len > r->size)
                break; /* cannot happen for our own writer; stop rather than run off */
            pos += len;
        } else if (seq == (pos | VSP_SEQ_VALID) && close_batch(r, pos)) {
            pos += ((const struct vsp_rec_hdr *)seq_at(r, pos))->len; /* closed and committed */
        } else {
            break; /* reserved, not committed yet */
        }
    }
    return pos;
}

long vsp_ring_flush(struct vsp_ring *r, int all)
{
    int expected = 0;
    /* acquire: pairs with the release that clears the flag below, so this drainer sees the tail
     * the previous drainer stored. Nobody ever waits on the flag. */
    if (!vsp_cas_acq_rel(&r->flushing, &expected, 1))
        return 0;
    long total = 0;
    int spins = 0;
    for (;;) {
        uint64_t tail = vsp_load_relaxed(&r->hdr->tail); /* only the flag holder writes tail */
        /* acquire: a reservation we read here has its pad word / seq store ordered after it. */
        uint64_t head = vsp_load_acquire(&r->hdr->head);
        uint64_t end = committed_end(r, tail, head);
        if (end > tail && !r->failed) {
            uint64_t off = tail & r->mask;
            uint64_t n = end - tail;
            uint64_t first = n < r->size - off ? n : r->size - off;
            int rc = r->prepare_write ? r->prepare_write(r, r->hdr->log_offset + tail, n) : 0;
            if (rc == 0)
                rc = pwrite_all(r->fd, r->base + off, first, r->hdr->log_offset + tail);
            if (rc == 0 && n > first)
                rc = pwrite_all(r->fd, r->base, n - first, r->hdr->log_offset + tail + first);
            if (rc < 0) {
                r->failed = 1;
                vsp_fetch_or_relaxed(&r->hdr->flags, VSP_FLAG_LOG_FAILED);
                total = rc;
                break;
            }
            /* release: the pwrite above has read these ring bytes; writers that acquire the new
             * tail in reserve may overwrite them only after this store. */
            vsp_store_release(&r->hdr->tail, end);
            vsp_store_relaxed(&r->mark_due, 1); /* relaxed: a hint for the next commit */
            total += (long)n;
            continue;
        }
        if (!all || end >= head)
            break;
        /* Finalisation with a record still being written by another thread: give it up to
         * about 200 ms, then leave the rest in the ring (readers find it there). */
        if (++spins > 2000)
            break;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    /* release: publishes our tail store to the next drainer (pairs with the CAS above). */
    vsp_store_release(&r->flushing, 0);
    return total;
}

static int reserve(struct vsp_ring *r, uint16_t type, uint32_t payload_len, struct vsp_resv *out, uint32_t tid)
{
    uint64_t len = (sizeof(struct vsp_rec_hdr) + payload_len + REC_ALIGN - 1) & ~(uint64_t)(REC_ALIGN - 1);
    if (len > r->size / 4)
        return -E2BIG;
    uint64_t head = vsp_load_relaxed(&r->hdr->head);
    uint64_t pos, need, pad;
    for (;;) {
        uint64_t off = head & r->mask;
        pad = off + len > r->size ? r->size - off : 0;
        need = pad + len;
        /* acquire: pairs with the drainer's release of tail; the bytes below tail have been
         * copied out before we may reuse them. */
        uint64_t tail = vsp_load_acquire(&r->hdr->tail);
        /* seq_cst: see give_back_ring (trace.c); a plain load on x86 */
        unsigned long long limit = __atomic_load_n(&r->post_limit, __ATOMIC_SEQ_CST);
        if (VSP_UNLIKELY_RING(limit) && head + need > limit) {
            vsp_fetch_add_relaxed(&r->hdr->dropped, 1); /* past the window kept after END */
            return -ENOSPC;
        }
        if (head + need - tail > r->size) {
            if (r->failed) {
                vsp_fetch_add_relaxed(&r->hdr->dropped, 1);
                return -ENOSPC;
            }
            if (vsp_ring_flush(r, 0) > 0) {
                head = vsp_load_relaxed(&r->hdr->head);
                continue;
            }
            if (r->on_full == VSP_ON_FULL_DROP) {
                vsp_fetch_add_relaxed(&r->hdr->dropped, 1);
                return -ENOSPC;
            }
            sched_yield(); /* full, and the oldest record is still being written */
            head = vsp_load_relaxed(&r->hdr->head);
            continue;
        }
        /* relaxed: the CAS only hands out disjoint byte ranges; the contents are published by
         * the release stores of the seq words below, not by head. */
        if (vsp_cas_weak_relaxed(&r->hdr->head, &head, head + need))
            break;
    }
    if (pad) {
        /* release: pairs with the acquire in committed_end / readers; a pad word is complete
         * in itself. */
        vsp_store_release(seq_at(r, head), head | VSP_SEQ_VALID | VSP_SEQ_COMMITTED | VSP_SEQ_PAD);
    }
    pos = head + pad;
    struct vsp_rec_hdr *h = (struct vsp_rec_hdr *)seq_at(r, pos);
    h->len = (uint32_t)len;
    h->type = type;
    h->rflags = 0;
    if (type == VSP_REC_BATCH) {
        /* before the "reserved" mark: a drainer that finds the batch reads a valid state word,
         * never bytes of an earlier lap */
        struct vsp_rec_batch *b = (struct vsp_rec_batch *)(h + 1);
        b->state = VSP_BATCH_TAG(pos);
        b->tid = tid;
        b->reserved = 0;
    }
    /* release: len and type become visible no later than the "reserved" mark, so a reader of a
     * process killed mid-record can skip the torn record by its length. */
    vsp_store_release(&h->seq, pos | VSP_SEQ_VALID);
    out->rec = h;
    out->payload = h + 1;
    if (len > sizeof *h + payload_len)
        memset((unsigned char *)out->payload + payload_len, 0, len - sizeof *h - payload_len);
    return 0;
}

int vsp_ring_reserve(struct vsp_ring *r, uint16_t type, uint32_t payload_len, struct vsp_resv *out)
{
    return reserve(r, type, payload_len, out, 0);
}

/* ---- frees in flight and SEQMARK records ----
 * A slot per free in flight, each on its own cache line (threads free concurrently). A thread
 * that owns a counter stripe (tcount.h) owns the in-flight slot of the same index, and writes it
 * with plain stores: nobody else writes there (a stripe has one owner; a thread's exit ends its
 * free in flight before the stripe is given back: core.c). A thread's free that finds its own
 * slot taken (a signal handler on an alternate stack, which is recorded, freeing while the
 * interrupted free holds it; or a free left by a jump and not yet abandoned) takes a shared one.
 * Threads without a stripe (more than VSP_TC_STRIPES at once, or counting after their exit)
 * share the slots past those, claimed by CAS, trying the one they used last first. Slot values: 0 free, SLOT_BUSY claimed with the number not taken yet,
 * else number + SLOT_BIAS. More frees in flight than shared slots are counted in `unslotted`, and
 * a mark taken meanwhile settles nothing (PARTIAL). Issue 22: the claim was a CAS for every free. */
#define OWNED_SLOTS VSP_TC_STRIPES
#define SHARED_SLOTS 64
#define INFLIGHT_SLOTS (OWNED_SLOTS + SHARED_SLOTS)
#define SLOT_BUSY 1ull
#define SLOT_BIAS 2ull
static struct {
    unsigned long long v;
    unsigned long long ptr; /* the address being freed (written before v names the number) */
    char pad[48];
} inflight[INFLIGHT_SLOTS] __attribute__((aligned(64)));
static unsigned long unslotted;
static __thread int slot_hint __attribute__((tls_model("initial-exec")));

static int claim_shared_slot(void)
{
    for (int i = 0; i < SHARED_SLOTS; i++) {
        int k = OWNED_SLOTS + (slot_hint + i) % SHARED_SLOTS;
        unsigned long long zero = 0;
        /* seq_cst, with the seq_cst fetch_add in vsp_ring_seq_begin: the claim is visible before
         * the number exists, so a mark that reads next_seq past our number finds the slot claimed
         * (the SEQMARK writer reads next_seq, then the slots, both seq_cst). */
        if (vsp_load_relaxed(&inflight[k].v) == 0 &&
            __atomic_compare_exchange_n(&inflight[k].v, &zero, SLOT_BUSY, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
            slot_hint = k - OWNED_SLOTS;
            return k;
        }
    }
    __atomic_fetch_add(&unslotted, 1, __ATOMIC_SEQ_CST); /* seq_cst: as the claim above */
    return -1;
}

uint64_t vsp_ring_seq_begin(struct vsp_ring *r, uint64_t ptr, int *slot)
{
    int k = vsp_tc_self()->index;
    /* (a handler that interrupts this check and the store below runs to completion first, and
     * leaves the slot as it found it) */
    if (__builtin_expect(k >= 0 && k < OWNED_SLOTS && vsp_load_relaxed(&inflight[k].v) == 0, 1)) {
        /* The thread's own slot. The claim must be visible to a mark that sees our number (as
         * the CAS in claim_shared_slot): the seq_cst fetch_add below is a release, and a mark
         * that reads next_seq past our number acquires from it, so this relaxed store happens
         * before the mark's loads of the slots (on x86-64 the locked add also drains it). */
        vsp_store_relaxed(&inflight[k].v, SLOT_BUSY);
    } else {
        k = claim_shared_slot();
    }
    *slot = k;
    uint64_t seq = __atomic_fetch_add(&r->hdr->next_seq, 1, __ATOMIC_SEQ_CST);
    if (k >= 0) {
        vsp_store_relaxed(&inflight[k].ptr, ptr);
        /* release: the address before the number (the mark reads the number, then the address);
         * BUSY already covered the slot for the mark's count */
        vsp_store_release(&inflight[k].v, seq + SLOT_BIAS);
    }
    return seq;
}

void vsp_ring_seq_end(int slot)
{
    /* release: the event's append (or its drop) happens before the slot reads as free, so a mark
     * that no longer lists the number comes after the batch that holds the event. */
    if (slot >= 0)
        vsp_store_release(&inflight[slot].v, 0);
    else
        __atomic_fetch_sub(&unslotted, 1, __ATOMIC_RELEASE);
}

void vsp_ring_inflight_reset(void)
{
    memset(inflight, 0, sizeof inflight);
    unslotted = 0;
}

/* A SEQMARK: next_seq first, then the slots (seq_cst: see vsp_ring_seq_begin). Every number below
 * next_seq whose slot reads free was appended before the slot was freed, into a batch reserved
 * before this mark. */
static void write_mark(struct vsp_ring *r)
{
    uint32_t cap = 0, n = 0, flags = 0;
    uint64_t next = __atomic_load_n(&r->hdr->next_seq, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&unslotted, __ATOMIC_SEQ_CST))
        flags |= VSP_SEQMARK_PARTIAL;
    /* Counted first, then listed straight into the record (no array on the hook's stack). A slot
     * claimed after the count holds a number taken after `next` was read: not listed. */
    for (int i = 0; i < INFLIGHT_SLOTS; i++)
        cap += __atomic_load_n(&inflight[i].v, __ATOMIC_SEQ_CST) != 0;
    struct vsp_resv res;
    if (reserve(r, VSP_REC_SEQMARK, (uint32_t)(sizeof(struct vsp_rec_seqmark) + cap * sizeof(struct vsp_seqmark_free)),
                &res, 0) < 0)
        return;
    struct vsp_rec_seqmark *m = res.payload;
    struct vsp_seqmark_free *list = (struct vsp_seqmark_free *)(m + 1);
    for (int i = 0; i < INFLIGHT_SLOTS; i++) {
        unsigned long long v = __atomic_load_n(&inflight[i].v, __ATOMIC_SEQ_CST);
        if (v == SLOT_BUSY) {
            flags |= VSP_SEQMARK_PARTIAL; /* its number is being taken: it may be below next */
        } else if (v >= SLOT_BIAS && v - SLOT_BIAS < next) {
            uint64_t ptr = vsp_load_relaxed(&inflight[i].ptr);
            /* acquire: the address read above is the one of this number, unless the slot moved
             * on meanwhile (the free finished: then it is not in flight, and not listed) */
            if (vsp_load_acquire(&inflight[i].v) != v)
                continue;
            if (n == cap) {
                flags |= VSP_SEQMARK_PARTIAL;
                continue;
            }
            list[n].seq = v - SLOT_BIAS;
            list[n].ptr = ptr;
            n++;
        }
    }
    memset(list + n, 0, (cap - n) * sizeof *list);
    m->next_seq = next;
    m->n_inflight = n;
    m->flags = flags;
    /* release: as vsp_ring_commit; not through it (a mark names nothing an event uses) */
    vsp_store_release(&res.rec->seq, (res.rec->seq & VSP_SEQ_POS_MASK) | VSP_SEQ_VALID | VSP_SEQ_COMMITTED);
}

static void maybe_drain(struct vsp_ring *r)
{
    uint64_t head = vsp_load_relaxed(&r->hdr->head);
    uint64_t tail = vsp_load_relaxed(&r->hdr->tail);
    if (head - tail > r->size / 2 && !vsp_load_relaxed(&r->flushing))
        vsp_ring_flush(r, 0);
    /* After a drain, one mark (the try-flag keeps the mark's own commit from writing another). */
    if (VSP_UNLIKELY_RING(vsp_load_relaxed(&r->mark_due)) && r->seqmarks && vsp_spin_trylock(&r->marking)) {
        vsp_store_relaxed(&r->mark_due, 0);
        write_mark(r);
        vsp_spin_unlock(&r->marking);
    }
}

void vsp_ring_commit(struct vsp_ring *r, struct vsp_resv *res)
{
    uint64_t pos = res->rec->seq & VSP_SEQ_POS_MASK;
    /* release: every payload byte written by this thread is visible before the record reads as
     * committed (pairs with the acquire in committed_end and in the offline reader). */
    vsp_store_release(&res->rec->seq, pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED);
    /* Events may name this record (a stack, a label): batches opened before it close before
     * their next event, so every record an event names precedes it in the stream. relaxed: the
     * record's id reaches other threads through a release (the stack table's publish) that is
     * sequenced after this, and their acquire makes this value visible with it. */
    vsp_atomic_max_relaxed(&r->meta_pos, pos);
    maybe_drain(r);
}

/* ---- batches (format 3) ---- */

/* The owner ends its batch with `used` bytes of events: final count, closed, committed. */
static void batch_finish(struct vsp_ring *r, struct vsp_batch *tb, uint64_t used)
{
    /* release: the event bytes before the count (readers of a batch acquire the state word). */
    vsp_store_release(&vsp_batch_of(tb)->state, VSP_BATCH_TAG(tb->pos) | used | VSP_BATCH_CLOSED);
    commit_record(tb->rec, tb->pos);
    tb->rec = NULL;
    maybe_drain(r);
}

void vsp_ring_batch_close(struct vsp_ring *r, struct vsp_batch *tb)
{
    if (!tb->rec)
        return;
    /* (the drainer may have closed and committed it already; one of an earlier trace is left) */
    if (tb->gen == r->gen && vsp_load_relaxed(&tb->rec->seq) == (tb->pos | VSP_SEQ_VALID) &&
        batch_close_word(vsp_batch_of(tb), tb->pos)) {
        commit_record(tb->rec, tb->pos);
        tb->rec = NULL;
        maybe_drain(r);
        return;
    }
    tb->rec = NULL;
}

static int batch_open(struct vsp_ring *r, struct vsp_batch *tb, uint32_t tid)
{
    struct vsp_resv res;
    uint32_t bytes = tb->next_bytes ? tb->next_bytes : VSP_BATCH_MIN_BYTES;
    int rc = reserve(r, VSP_REC_BATCH, bytes - (uint32_t)sizeof(struct vsp_rec_hdr), &res, tid);
    if (rc < 0)
        return rc;
    tb->rec = res.rec;
    /* relaxed: our own store; a drainer may already be closing the (empty) batch */
    tb->pos = vsp_load_relaxed(&res.rec->seq) & VSP_SEQ_POS_MASK;
    tb->gen = r->gen;
    vsp_codec_reset(&tb->codec, r->hdr->start_monotonic_ns);
    return 0;
}

static int append_event(struct vsp_ring *r, struct vsp_batch *tb, struct vsp_rec_event *e, int take_seq)
{
    unsigned char buf[VSP_CODEC_MAX];
    for (int tries = 0; tries < 8; tries++) {
        /* A batch of an earlier trace is left alone; one opened before a record this event may
         * name (meta_pos) is closed, so the event lands after that record. relaxed: see
         * vsp_ring_commit. */
        if (tb->rec && (tb->gen != r->gen || vsp_load_relaxed(&r->meta_pos) > tb->pos))
            vsp_ring_batch_close(r, tb);
        if (!tb->rec && batch_open(r, tb, e->tid) < 0)
            return -ENOSPC;
        /* Still ours? Once the drainer has closed and committed it, the bytes may be copied out
         * and reused by another record: the tag in the state word (and the CAS on it) tells. */
        struct vsp_rec_batch *b = vsp_batch_of(tb);
        uint64_t s = vsp_load_relaxed(&b->state);
        if ((s & (VSP_BATCH_CLOSED | VSP_BATCH_TAG_MASK)) != VSP_BATCH_TAG(tb->pos) ||
            vsp_load_relaxed(&tb->rec->seq) != (tb->pos | VSP_SEQ_VALID)) {
            tb->rec = NULL; /* the drainer closed it (a drain, finalisation): open another */
            continue;
        }
        /* acquire: our writes of the event below stay after the claim. From now until our count
         * below, nobody else writes the state word: a drainer that meets the batch sees WRITING
         * and leaves it open for its next pass (batch_close_word). The CAS, not a store, because
         * the tag check must be atomic with the claim: a batch the drainer closed, copied out and
         * gave back to another record between our load and here must never be written. */
        if (!vsp_cas_acquire(&b->state, &s, s | VSP_BATCH_WRITING)) {
            tb->rec = NULL; /* closed by the drainer between the two loads */
            continue;
        }
        if (take_seq) {
            e->seq = vsp_ring_next_seq(r);
            take_seq = 0;
        }
        uint32_t bytes = tb->rec->len;
        uint64_t cap = bytes - sizeof(struct vsp_rec_hdr) - sizeof *b;
        uint64_t used = s & VSP_BATCH_USED_MASK;
        unsigned char *at = (unsigned char *)(b + 1) + used;
        /* (coded straight against the batch's state: a batch it does not fit is finished, and
         * the next one starts from a fresh state) */
        unsigned n;
        if (cap - used >= VSP_CODEC_MAX) {
            n = vsp_codec_encode(&tb->codec, e, at);
        } else {
            n = vsp_codec_encode(&tb->codec, e, buf);
            if (used + n > cap) {
                /* full: the event goes first into a new, larger batch */
                uint32_t next = bytes * 2;
                tb->next_bytes = next < VSP_BATCH_MAX_BYTES ? next : VSP_BATCH_MAX_BYTES;
                batch_finish(r, tb, used);
                continue;
            }
            memcpy(at, buf, n);
        }
        /* release: the event's bytes are visible before the count that includes them. A plain
         * store: while WRITING is set the word is ours alone (batch_close_word). */
        vsp_store_release(&b->state, s + n);
        return 0;
    }
    vsp_fetch_add_relaxed(&r->hdr->dropped, 1);
    return -ENOSPC;
}

void vsp_ring_append_abandoned(struct vsp_ring *r, struct vsp_batch *tb)
{
    if (!tb->busy)
        return;
    tb->busy = 0;
    /* The jump may have left the claim (WRITING) on the batch and the coder's state half updated:
     * the claim is dropped (the event's bytes were never counted) and the batch closed, so the
     * next event starts a new batch from a fresh coder. While WRITING is set the word is ours
     * alone (batch_close_word). */
    if (tb->rec && tb->gen == r->gen && vsp_load_relaxed(&tb->rec->seq) == (tb->pos | VSP_SEQ_VALID)) {
        struct vsp_rec_batch *b = vsp_batch_of(tb);
        uint64_t s = vsp_load_relaxed(&b->state);
        if ((s & (VSP_BATCH_CLOSED | VSP_BATCH_TAG_MASK)) == VSP_BATCH_TAG(tb->pos) && (s & VSP_BATCH_WRITING))
            vsp_store_release(&b->state, s & ~VSP_BATCH_WRITING); /* release: as the count's store */
        vsp_ring_batch_close(r, tb);
    }
    tb->rec = NULL;
}

int vsp_ring_append_event(struct vsp_ring *r, struct vsp_batch *tb, struct vsp_rec_event *e, int take_seq)
{
    /* A signal handler's call that interrupted this thread's own append (a handler on an alternate
     * stack is recorded, not nested) would change the batch under it: its event is dropped and
     * counted instead. The signal fences keep the flag's stores around the append. */
    if (VSP_UNLIKELY_RING(tb->busy)) {
        vsp_fetch_add_relaxed(&r->hdr->dropped, 1);
        return -ENOSPC;
    }
    tb->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    int rc = append_event(r, tb, e, take_seq);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    tb->busy = 0;
    return rc;
}
