/* Lock-free multi-producer ring in the trace file's shared mapping (see ring.h for the contract,
 * include/vramspy/trace_format.h for the layout). Writers reserve space with a CAS on header.head,
 * fill the record, and publish it with a release store of its seq word. A writer that sees the ring
 * more than half full tries to become the drainer (a private try-flag, never waited on) and copies
 * the committed prefix into the log with pwrite, then advances header.tail.
 * Must never: take a lock, call malloc or stdio, or block except when the ring is full in wait mode. */
#include "ring.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"

#define REC_ALIGN 8u

static inline uint64_t *seq_at(struct vsp_ring *r, uint64_t pos)
{
    return (uint64_t *)(r->base + (pos & r->mask));
}

void vsp_ring_attach(struct vsp_ring *r, struct vsp_file_header *hdr, int fd, int on_full)
{
    r->hdr = hdr;
    r->base = (unsigned char *)hdr + hdr->ring_offset;
    r->size = hdr->ring_size;
    r->mask = hdr->ring_size - 1;
    r->fd = fd;
    r->on_full = on_full;
    r->flushing = 0;
    r->failed = 0;
    r->prepare_write = NULL;
}

static int pwrite_all(int fd, const unsigned char *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
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

int vsp_ring_reserve(struct vsp_ring *r, uint16_t type, uint32_t payload_len, struct vsp_resv *out)
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
    /* release: len and type become visible no later than the "reserved" mark, so a reader of a
     * process killed mid-record can skip the torn record by its length. */
    vsp_store_release(&h->seq, pos | VSP_SEQ_VALID);
    out->rec = h;
    out->payload = h + 1;
    if (len > sizeof *h + payload_len)
        memset((unsigned char *)out->payload + payload_len, 0, len - sizeof *h - payload_len);
    return 0;
}

void vsp_ring_commit(struct vsp_ring *r, struct vsp_resv *res)
{
    uint64_t pos = res->rec->seq & VSP_SEQ_POS_MASK;
    /* release: every payload byte written by this thread is visible before the record reads as
     * committed (pairs with the acquire in committed_end and in the offline reader). */
    vsp_store_release(&res->rec->seq, pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED);
    uint64_t head = vsp_load_relaxed(&r->hdr->head);
    uint64_t tail = vsp_load_relaxed(&r->hdr->tail);
    if (head - tail > r->size / 2 && !vsp_load_relaxed(&r->flushing))
        vsp_ring_flush(r, 0);
}
