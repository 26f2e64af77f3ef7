/* The trace ring: a lock-free multi-producer byte ring living in a MAP_SHARED mapping of the trace
 * file, drained into the file's log by whichever writer finds it more than half full.
 * Format: include/vramspy/trace_format.h. Safe to use from many threads; no locks, no malloc, and
 * no system call unless the ring needs draining (then one pwrite) or is full (then sched_yield). */
#ifndef VSP_RING_H
#define VSP_RING_H

#include <stdint.h>
#include "shim/common/config.h"
#include "vramspy/event_codec.h"
#include "vramspy/trace_format.h"


struct vsp_ring {
    struct vsp_file_header *hdr; /* shared mapping: cursors and counters */
    unsigned char *base;         /* ring bytes (same mapping, after the header) */
    uint64_t size;               /* power of two */
    uint64_t mask;
    int fd;                      /* the trace file, for pwrite of the log */
    int on_full;                 /* enum vsp_on_full */
    int flushing;                /* private: 1 while a writer drains (try-lock, never waited on) */
    int failed;                  /* private: the log could not be written; drop from now on */
    /* Called by the drainer before each log write of len bytes at file offset off: may replace
     * fd (the program closed or reused it) or refuse with -errno (then the log fails as on a
     * write error). NULL: no check. Runs under the drainer's flag, one thread at a time. */
    int (*prepare_write)(struct vsp_ring *r, uint64_t off, uint64_t len);
    unsigned gen;                /* private: tells this attachment from earlier ones (batches) */
    unsigned long long meta_pos; /* private, atomic: the highest position of a committed record
                                    other than a batch (what events may name: stacks, labels) */
    int mark_due;                /* private, atomic: the drainer copied records since the last
                                    SEQMARK: the next commit writes one */
    int marking;                 /* private: try-flag of the SEQMARK writer */
    int seqmarks;                /* SEQMARK records are written (the header says VSP_FLAG_SEQMARKS) */
    unsigned long long post_limit; /* atomic; 0, or the end of the stream past which nothing may
                                      be reserved (finalised, the ring's blocks given back) */
};

/* A thread's open batch (format 3, VSP_REC_BATCH): kept by the caller, thread-local in the shim;
 * all zero means none. Only its owner appends; a drainer may close it at any time. */
struct vsp_batch {
    struct vsp_rec_hdr *rec; /* the record (NULL: none); its payload is the vsp_rec_batch */
    uint64_t pos;          /* the record's stream position */
    uint32_t next_bytes;   /* the length of the next one (0: VSP_BATCH_MIN_BYTES) */
    unsigned gen;          /* vsp_ring.gen of the ring it is in */
    struct vsp_codec codec; /* the last event appended */
    int busy;              /* 1 during vsp_ring_append_event (a signal handler's call is dropped) */
};

static inline struct vsp_rec_batch *vsp_batch_of(const struct vsp_batch *tb)
{
    return (struct vsp_rec_batch *)(tb->rec + 1);
}

/* The next event sequence number (trace_format.h, vsp_rec_event.seq). relaxed: the counter only
 * has to hand out distinct, increasing numbers; what a number means is fixed by where it is taken
 * (before a real free, after a real allocation: a free's real call completes before any
 * allocation can return its address, so the allocation's number is larger). */
static inline uint64_t vsp_ring_next_seq(struct vsp_ring *r)
{
    return __atomic_fetch_add(&r->hdr->next_seq, 1, __ATOMIC_RELAXED);
}

/* A free's number, taken before its real call (vsp_ring_next_seq's rule) and known as in flight
 * until vsp_ring_seq_end: the drainer lists such numbers in its SEQMARK records, so a reader keeps
 * waiting for the free's event however long the call blocks (holding back only the events on its
 * address, ptr), and settles every other missing number at once. Returns the number; *slot is the in-flight slot to hand to vsp_ring_seq_end
 * after the event was appended (or dropped). No lock: plain stores to the thread's own slot (the
 * index of its counter stripe), or one CAS on a shared slot for a thread without one. */
uint64_t vsp_ring_seq_begin(struct vsp_ring *r, uint64_t ptr, int *slot);
void vsp_ring_seq_end(int slot);
/* A forked child: the parent's frees in flight are not the child's. */
void vsp_ring_inflight_reset(void);

/* Bytes of a batch record (header included). A thread's first batch is small, so a thread that
 * makes one call wastes little; each batch it fills doubles the next, up to a size that spreads
 * the two headers over some thirty events and still wastes little when closed early (a drain, a
 * new stack). */
#define VSP_BATCH_MIN_BYTES 128u
#define VSP_BATCH_MAX_BYTES 512u

/* A reservation: payload points just past the record header. */
struct vsp_resv {
    struct vsp_rec_hdr *rec;
    void *payload;
};

/* Set up over an existing mapping whose header the caller filled in. */
void vsp_ring_attach(struct vsp_ring *r, struct vsp_file_header *hdr, int fd, int on_full);

/* Reserve a record of `type` with `payload_len` bytes. Returns 0, or -ENOSPC when the event was
 * dropped (drop mode, or the log failed), -E2BIG when it can never fit. AS-safe except that a full
 * ring in wait mode yields the CPU until a drain frees space. */
int vsp_ring_reserve(struct vsp_ring *r, uint16_t type, uint32_t payload_len, struct vsp_resv *out);

/* Publish a reserved record. AS-safe. */
void vsp_ring_commit(struct vsp_ring *r, struct vsp_resv *res);

/* Append event `e` to the thread's batch `tb` (opening one when it has none, or none with room),
 * coded compactly. take_seq: e->seq is taken here (vsp_ring_next_seq), once the event has a place
 * (an allocation: a dropped one leaves no gap). A new batch takes e->tid. Returns 0, or -ENOSPC when
 * the event was dropped. AS-safe; no lock, one CAS on the batch word before the event and a plain
 * store after it. */
int vsp_ring_append_event(struct vsp_ring *r, struct vsp_batch *tb, struct vsp_rec_event *e, int take_seq);

/* The thread left an append by a non-local jump (a signal handler's siglongjmp; see core.c's
 * abandoned hooks): its claim on the batch is dropped and the batch closed. Nothing when it did
 * not. Called on the thread itself, outside any append. */
void vsp_ring_append_abandoned(struct vsp_ring *r, struct vsp_batch *tb);

/* Close the thread's batch (it stays in the ring; the drainer copies it out). */
void vsp_ring_batch_close(struct vsp_ring *r, struct vsp_batch *tb);

/* Copy committed records from the ring into the log, closing the open batches it meets (their
 * owners open new ones). `all`: keep going until everything reserved so far is committed and
 * copied (finalisation); otherwise copy what is contiguous and return.
 * Returns bytes copied, or -errno. */
long vsp_ring_flush(struct vsp_ring *r, int all);

#endif
