/* Trace reader (see trace_reader.h). The stream is read from the log while pos < tail and from the
 * ring after that; in the ring a record counts only if its seq word names its own position, which
 * tells written records from stale bytes of an earlier lap. A record reserved but not committed
 * (the process died inside the call) is stepped over by its length; bytes that hold no record
 * (a writer killed between reserving and marking) are skipped by scanning for the next seq word
 * that names its own position. */
#include "report/read/trace_reader.h"

#include "vramspy/event_codec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REORDER_WINDOW (1u << 20) /* see "the reorder window" below */

/* A source of events waiting in the reorder window: a batch being decoded (its next event
 * decoded, the rest still coded) or a single EVENT record. */
struct cursor {
    struct vsp_codec codec;      /* codec.last: its next event (and the coding state after it) */
    const unsigned char *p, *end; /* the batch's bytes after that event (p == end: it is the last) */
    const unsigned char *data;   /* where the batch's coded bytes start (p's base) */
    unsigned char *copy;         /* a batch read from the ring: our copy of its bytes (else NULL) */
    uint32_t tid;
    uint64_t pos, file_offset;   /* of its record */
    uint64_t data_offset;        /* the file offset of data[0] (for errors) */
};

/* The window is a min-heap on the next seq of each cursor (cursors in a slab). */
struct heap_ent {
    uint64_t seq;
    uint32_t slot;
};

struct vsp_reader {
    const unsigned char *map;
    size_t map_len;
    const struct vsp_file_header *hdr;
    uint64_t ring_size, head, tail, log_avail, pos;
    uint64_t released;     /* file offset below which mapped pages were given back */
    uint64_t release_at;   /* file offset at which to give pages back next */
    int done;
    char err[512];
    struct vsp_reader_stats st;
    /* Version 2: events are delivered in seq order (see the reorder window below). */
    int reorder;
    struct cursor *slab;      /* cursors; free ones listed in free_slots */
    uint32_t *free_slots;
    size_t nfree, slab_cap;
    struct heap_ent *heap;    /* min-heap on each cursor's next seq */
    size_t nheap, heap_cap;
    uint64_t held;            /* events waiting (an upper bound: a batch's coded bytes / 7) */
    uint64_t expect;          /* the next seq in order */
    int advance;              /* the top cursor's event was handed out: move it on first */
    struct vsp_rec_event cur; /* the event handed out last (its record's payload) */
    struct vsp_record barrier; /* an END record waiting for the window to drain */
    int have_barrier;
    int source_rc;            /* 1 while the file has more; then 0 (end) or -1 (corrupt) */
    /* SEQMARK records (header flag VSP_FLAG_SEQMARKS): the latest complete mark */
    int marks;                /* the trace has them: settle gaps by them, not by the window */
    uint64_t mark_next;       /* every number below it is read or lost... */
    struct vsp_seqmark_free *mark_inflight; /* ...except these (by seq): frees in flight at the mark */
    uint32_t mark_n, mark_cap;
    /* Frees in flight that the window went past (more than REORDER_WINDOW events waited): events
     * on their addresses are held aside (stash, in seq order) until the free comes, then follow it. */
    struct vsp_seqmark_free *passed;
    size_t npassed, cap_passed;
    struct held_event *stash;
    size_t nstash, cap_stash;
    int releasing;            /* a passed free was handed out: its address's held events follow */
    uint64_t release_ptr;
    uint64_t last_time;       /* the latest time_ns handed out (late events are not earlier) */
    uint64_t window;          /* REORDER_WINDOW (tests set less: vsp_reader_set_window) */
};

struct held_event {
    struct vsp_rec_event ev;
    uint64_t pos, file_offset;
};

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

struct vsp_reader *vsp_reader_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)sb.st_size < VSP_HEADER_SIZE) {
        seterr(err, errlen, "%s: not a vramspy trace (%lld bytes, shorter than the %u-byte header)", path,
               (long long)sb.st_size, VSP_HEADER_SIZE);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        seterr(err, errlen, "%s: cannot map: %s", path, strerror(errno));
        return NULL;
    }
    const struct vsp_file_header *h = map;
    const char *why = NULL;
    uint64_t at = 0;
    if (memcmp(h->magic, VSP_TRACE_MAGIC, VSP_TRACE_MAGIC_LEN) != 0) {
        why = "not a vramspy trace (bad magic)";
    } else if (h->version > VSP_TRACE_VERSION) {
        seterr(err, errlen, "%s: trace format version %u is newer than this reader understands (%u); "
               "use a newer vramspy", path, h->version, VSP_TRACE_VERSION);
        munmap(map, (size_t)sb.st_size);
        return NULL;
    } else if (h->version == 0 || h->header_size != VSP_HEADER_SIZE || h->ring_offset != VSP_HEADER_SIZE) {
        why = "corrupt header (version or header size)", at = 8;
    } else if (h->ring_size < 4096 || (h->ring_size & (h->ring_size - 1)) || h->ring_size > (1ull << 32) ||
               h->log_offset != h->ring_offset + h->ring_size) {
        why = "corrupt header (ring size or log offset)", at = 24;
    } else if ((uint64_t)sb.st_size < h->log_offset) {
        why = "truncated: the file ends inside the ring", at = (uint64_t)sb.st_size;
    } else if (h->tail > h->head || h->head - h->tail > h->ring_size || (h->head & 7) || (h->tail & 7)) {
        why = "corrupt header (stream cursors)", at = 128;
    }
    if (why) {
        seterr(err, errlen, "%s: %s at offset %llu", path, why, (unsigned long long)at);
        munmap(map, (size_t)sb.st_size);
        return NULL;
    }
    struct vsp_reader *r = calloc(1, sizeof *r);
    if (!r) {
        seterr(err, errlen, "%s: out of memory", path);
        munmap(map, (size_t)sb.st_size);
        return NULL;
    }
    r->map = map;
    r->map_len = (size_t)sb.st_size;
    r->hdr = h;
    r->ring_size = h->ring_size;
    r->head = h->head;
    r->tail = h->tail;
    r->log_avail = (uint64_t)sb.st_size - h->log_offset;
    r->st.finalized = (h->flags & VSP_FLAG_COMPLETE) != 0;
    r->st.log_failed = (h->flags & VSP_FLAG_LOG_FAILED) != 0;
    r->st.coarse_clock = (h->flags & VSP_FLAG_COARSE_CLOCK) != 0;
    r->st.dropped = h->dropped;
    r->reorder = h->version >= 2;
    r->marks = (h->flags & VSP_FLAG_SEQMARKS) != 0;
    r->window = REORDER_WINDOW;
    r->release_at = 64u << 20;
    r->source_rc = 1;
    if (r->log_avail < r->tail) {
        r->st.truncated = 1; /* copied or cut short: read what is there */
    }
    madvise(map, r->map_len, MADV_SEQUENTIAL);
    r->released = h->log_offset; /* the header and ring stay mapped */
    return r;
}

static int corrupt(struct vsp_reader *r, uint64_t off, const char *what)
{
    snprintf(r->err, sizeof r->err, "corrupt trace: %s at offset %llu", what, (unsigned long long)off);
    r->done = 1;
    return -1;
}

static int too_deep(struct vsp_reader *r, uint64_t off, const struct vsp_rec_stack *s)
{
    snprintf(r->err, sizeof r->err, "corrupt trace: a stack of %u frames, deeper than the %u the shim ever "
             "writes, at offset %llu", s->nframes, VSP_READER_MAX_FRAMES, (unsigned long long)off);
    r->done = 1;
    return -1;
}

static int min_payload(uint16_t type)
{
    switch (type) {
    case VSP_REC_PROCESS: return (int)sizeof(struct vsp_rec_process);
    case VSP_REC_MODULE: return (int)sizeof(struct vsp_rec_module);
    case VSP_REC_STACK: return (int)sizeof(struct vsp_rec_stack);
    case VSP_REC_EVENT: return (int)VSP_REC_EVENT_V1_SIZE; /* version 2 appends seq */
    case VSP_REC_END: return (int)VSP_REC_END_MIN_SIZE; /* `abandoned` appended later */
    case VSP_REC_SEQMARK: return (int)sizeof(struct vsp_rec_seqmark);
    case VSP_REC_BATCH: return (int)sizeof(struct vsp_rec_batch);
    case VSP_REC_PYCODE: return (int)sizeof(struct vsp_rec_pycode);
    default: return 0;
    }
}

/* Checks a record's own length fields against its type; 0 when fine, -1 when they overrun the
 * record, -2 for a stack deeper than the shim ever writes. */
static int check_payload(uint16_t type, const unsigned char *p, uint32_t len)
{
    if ((int)len < min_payload(type))
        return -1;
    if (type == VSP_REC_STACK) {
        const struct vsp_rec_stack *s = (const void *)p;
        if ((uint64_t)s->nframes * 8 > len - sizeof *s)
            return -1;
        /* version 4: up to the depth of native frames, then up to the depth of Python frames */
        if (s->nframes > 2 * VSP_READER_MAX_FRAMES)
            return -2;
        const uint64_t *w = (const void *)(s + 1);
        uint32_t native = 0;
        while (native < s->nframes && !VSP_PYFRAME_IS(w[native]))
            native++;
        if (native > VSP_READER_MAX_FRAMES || s->nframes - native > VSP_READER_MAX_FRAMES)
            return -2;
    } else if (type == VSP_REC_PYCODE) {
        const struct vsp_rec_pycode *c = (const void *)p;
        if ((uint64_t)c->name_len + c->file_len > len - sizeof *c || !c->name_len || !c->file_len)
            return -1;
    } else if (type == VSP_REC_MODULE) {
        const struct vsp_rec_module *m = (const void *)p;
        if ((uint64_t)m->path_len + m->build_id_len > len - sizeof *m || m->path_len == 0)
            return -1;
    } else if (type == VSP_REC_SEQMARK) {
        const struct vsp_rec_seqmark *m = (const void *)p;
        if ((uint64_t)m->n_inflight * sizeof(struct vsp_seqmark_free) > len - sizeof *m)
            return -1;
    } else if (type == VSP_REC_PROCESS) {
        const struct vsp_rec_process *pr = (const void *)p;
        if ((uint64_t)pr->exe_len + pr->argv_len > len - sizeof *pr || pr->exe_len == 0)
            return -1;
    }
    return 0;
}

static int emit(struct vsp_reader *r, struct vsp_record *rec, uint64_t pos, uint64_t off,
                const struct vsp_rec_hdr *h)
{
    rec->pos = pos;
    rec->file_offset = off;
    rec->type = h->type;
    rec->payload_len = h->len - (uint32_t)sizeof *h;
    rec->payload = h + 1;
    r->st.records++;
    return 1;
}

static int next_from_log(struct vsp_reader *r, struct vsp_record *rec)
{
    uint64_t pos = r->pos;
    uint64_t avail = r->tail < r->log_avail ? r->tail : r->log_avail;
    uint64_t off = r->hdr->log_offset + pos;
    if (pos + 8 > avail) {
        r->done = 1; /* truncated copy of a trace: the rest is gone */
        return 0;
    }
    const unsigned char *p = r->map + off;
    uint64_t seq;
    memcpy(&seq, p, 8);
    if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED | VSP_SEQ_PAD)) {
        r->pos = (pos | (r->ring_size - 1)) + 1;
        return 2; /* no record; go on */
    }
    if (seq != (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED))
        return corrupt(r, off, "bad record marker");
    const struct vsp_rec_hdr *h = (const void *)p;
    /* (the || short-circuits: len is read only when the whole header is inside the file) */
    int cut = r->st.truncated && (pos + sizeof *h > avail || pos + ((const struct vsp_rec_hdr *)p)->len > avail);
    if (cut) {
        r->done = 1; /* the copy ends inside this record */
        return 0;
    }
    if (pos + sizeof *h > avail)
        return corrupt(r, off, "record header past the end of the log");
    if (h->len < sizeof *h || (h->len & 7) || h->len > r->ring_size / 4 || pos + h->len > avail)
        return corrupt(r, off, "bad record length");
    int bad = check_payload(h->type, (const unsigned char *)(h + 1), h->len - (uint32_t)sizeof *h);
    if (bad == -2)
        return too_deep(r, off, (const struct vsp_rec_stack *)(h + 1));
    if (bad < 0)
        return corrupt(r, off, "record fields overrun the record");
    r->pos = pos + h->len;
    /* Streaming: give back the pages behind the cursor every 64 MiB, so resident memory does not
     * grow with the trace (they are file-backed: touching a record again just reads it back). */
    if (off >= r->release_at) {
        r->release_at = off + (64u << 20);
        /* (events waiting in the reorder window are copies: nothing behind the cursor is read again) */
        uint64_t upto = off & ~(uint64_t)0xfffff;
        if (upto > r->released) {
            madvise((void *)(r->map + r->released), (size_t)(upto - r->released), MADV_DONTNEED);
            r->released = upto;
        }
    }
    return emit(r, rec, pos, off, h);
}

static int next_from_ring(struct vsp_reader *r, struct vsp_record *rec)
{
    const unsigned char *ring = r->map + r->hdr->ring_offset;
    uint64_t mask = r->ring_size - 1;
    while (r->pos < r->head) {
        uint64_t pos = r->pos;
        uint64_t off = pos & mask;
        const struct vsp_rec_hdr *h = (const void *)(ring + off);
        uint64_t seq = h->seq;
        if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED | VSP_SEQ_PAD)) {
            r->pos = (pos | mask) + 1;
            continue;
        }
        int room = off + sizeof *h <= r->ring_size;
        int lenok = room && h->len >= sizeof *h && !(h->len & 7) && h->len <= r->ring_size / 4 &&
                    off + h->len <= r->ring_size && pos + h->len <= r->head;
        int bad = lenok ? check_payload(h->type, (const unsigned char *)(h + 1), h->len - (uint32_t)sizeof *h) : -1;
        if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED) && lenok && bad == 0) {
            r->pos = pos + h->len;
            return emit(r, rec, pos, r->hdr->ring_offset + off, h);
        }
        if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED) && bad == -2)
            return too_deep(r, r->hdr->ring_offset + off, (const struct vsp_rec_stack *)(h + 1));
        if (seq == (pos | VSP_SEQ_VALID) && lenok && bad == 0 && h->type == VSP_REC_BATCH) {
            r->pos = pos + h->len; /* a batch still open: its counted events are whole */
            return emit(r, rec, pos, r->hdr->ring_offset + off, h);
        }
        if (seq == (pos | VSP_SEQ_VALID) && lenok) {
            r->st.torn++; /* the call never returned */
            r->pos = pos + h->len;
            continue;
        }
        /* Nothing was marked here: step 8 bytes and look again. */
        r->st.skipped_bytes += 8;
        r->pos = pos + 8;
    }
    r->done = 1;
    return 0;
}

/* Records in file order. */
static int next_raw(struct vsp_reader *r, struct vsp_record *rec)
{
    for (;;) {
        if (r->done)
            return r->err[0] ? -1 : 0;
        if (r->pos < r->tail) {
            if (r->st.truncated && r->pos >= r->log_avail) {
                r->done = 1;
                return 0;
            }
            int rc = next_from_log(r, rec);
            if (rc == 2)
                continue;
            if (rc == 0 && r->st.truncated)
                return 0;
            return rc;
        }
        return next_from_ring(r, rec);
    }
}

/* ---- the reorder window (versions 2 and 3) ----
 * Events carry a dense sequence number (0, 1, 2, ... in a process) and are delivered in its order.
 * File order differs from it in two ways: a free's record is written after its real call returned
 * (nothing is held across a call that may block), so it can reach the file after events that
 * follow it, above all the allocation that reuses its address; and (version 3) a thread's batch
 * sits where it was opened, so its later events come before other threads' records written
 * meanwhile. An event whose number is the next one is delivered at once; others wait in the
 * window until the numbers before them have come. A number that never comes (an event dropped in
 * drop mode, or one whose writer was killed) is settled by the trace itself where it has SEQMARK
 * records (the newest mark says which missing numbers are lost and which are frees still in
 * flight); in older traces it is given up once REORDER_WINDOW events wait (a record late by fewer
 * than that many events is still put back in its place). A free in flight is waited for however
 * long its call blocks: past REORDER_WINDOW waiting events the window goes on without it and holds
 * back only the events on its address (the reuse), which follow it when it comes. Other records
 * pass at once: each was written before the events that name it. An END record waits until every
 * held event is out. Held events are whole batches (a cursor each), decoded one event at a time. */

/* The fewest bytes a coded event takes (two bytes and five one-byte varints). */
#define MIN_CODED_EVENT 7u

static uint64_t cursor_weight(const struct cursor *c)
{
    return 1 + (uint64_t)(c->end - c->p) / MIN_CODED_EVENT;
}

static void sift_down(struct vsp_reader *r, size_t i)
{
    struct heap_ent e = r->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= r->nheap)
            break;
        if (l + 1 < r->nheap && r->heap[l + 1].seq < r->heap[l].seq)
            m = l + 1;
        if (r->heap[m].seq >= e.seq)
            break;
        r->heap[i] = r->heap[m];
        i = m;
    }
    r->heap[i] = e;
}

/* A new cursor waiting in the window; -1 when out of memory. */
static int cursor_add(struct vsp_reader *r, const struct cursor *c)
{
    if (!r->nfree) {
        size_t cap = r->slab_cap ? r->slab_cap * 2 : 256;
        if (cap > UINT32_MAX)
            return -1;
        struct cursor *ns = realloc(r->slab, cap * sizeof *ns);
        if (!ns)
            return -1;
        r->slab = ns;
        uint32_t *nf = realloc(r->free_slots, cap * sizeof *nf);
        if (!nf)
            return -1;
        r->free_slots = nf;
        for (size_t i = cap; i > r->slab_cap; i--)
            r->free_slots[r->nfree++] = (uint32_t)(i - 1);
        r->slab_cap = cap;
    }
    if (r->nheap == r->heap_cap) {
        size_t cap = r->heap_cap ? r->heap_cap * 2 : 256;
        struct heap_ent *nh = realloc(r->heap, cap * sizeof *nh);
        if (!nh)
            return -1;
        r->heap = nh;
        r->heap_cap = cap;
    }
    uint32_t slot = r->free_slots[--r->nfree];
    r->slab[slot] = *c;
    r->held += cursor_weight(c);
    size_t i = r->nheap++;
    struct heap_ent e = {c->codec.last.seq, slot};
    while (i > 0 && r->heap[(i - 1) / 2].seq > e.seq) {
        r->heap[i] = r->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    r->heap[i] = e;
    return 0;
}

/* Hands out ev (of the record at pos, off): the next seq expected is the one after it. */
static void deliver(struct vsp_reader *r, struct vsp_record *out, const struct vsp_rec_event *ev, uint64_t pos,
                    uint64_t off)
{
    if (ev->seq >= r->expect)
        r->expect = ev->seq + 1;
    if (ev->time_ns > r->last_time)
        r->last_time = ev->time_ns;
    out->pos = pos;
    out->file_offset = off;
    out->type = VSP_REC_EVENT;
    out->payload_len = sizeof *ev;
    out->payload = ev;
}

static void bad_batch(struct vsp_reader *r, uint64_t off, const char *what)
{
    r->source_rc = corrupt(r, off, what);
}

/* Moves the cursor whose event was handed out last (the heap's top) on to its next event. */
static void advance_top(struct vsp_reader *r)
{
    r->advance = 0;
    uint32_t slot = r->heap[0].slot;
    struct cursor *c = &r->slab[slot];
    r->held -= cursor_weight(c);
    int n = c->p < c->end ? vsp_codec_decode(&c->codec, c->p, c->end, c->tid) : 0;
    if (n > 0) {
        c->p += n;
        r->held += cursor_weight(c);
        r->heap[0].seq = c->codec.last.seq;
    } else {
        if (n < 0)
            bad_batch(r, c->data_offset + (uint64_t)(c->p - c->data), "undecodable event in a batch");
        free(c->copy);
        r->free_slots[r->nfree++] = slot;
        r->heap[0] = r->heap[--r->nheap];
    }
    if (r->nheap)
        sift_down(r, 0);
}

/* Hands out the event of the cursor with the lowest seq, in place: the cursor moves on at the
 * next call (the payload stays valid until then). */
static void window_pop(struct vsp_reader *r, struct vsp_record *out)
{
    struct cursor *c = &r->slab[r->heap[0].slot];
    deliver(r, out, &c->codec.last, c->pos, c->file_offset);
    r->advance = 1;
}

/* A batch record (version 3): its first event decoded, the batch into the window. */
static void open_batch(struct vsp_reader *r, const struct vsp_record *rec)
{
    const struct vsp_rec_batch *b = rec->payload;
    /* acquire: a batch of a process still running may be appended to while we read: the count
     * is read once, and the bytes it covers were written before it (the shim's release). */
    uint64_t used = __atomic_load_n(&b->state, __ATOMIC_ACQUIRE) & VSP_BATCH_USED_MASK;
    if (used > rec->payload_len - sizeof *b) {
        bad_batch(r, rec->file_offset, "batch longer than its record");
        return;
    }
    struct cursor c;
    c.data = (const unsigned char *)(b + 1);
    c.data_offset = rec->file_offset + sizeof(struct vsp_rec_hdr) + sizeof *b;
    c.copy = NULL;
    c.tid = b->tid;
    c.pos = rec->pos;
    c.file_offset = rec->file_offset;
    if (used == 0)
        return; /* closed before its first event */
    if (rec->file_offset < r->hdr->log_offset) {
        /* In the ring, the bytes of a process still running are reused once the batch is
         * drained: decode a copy taken now (the window may hold the batch a while). */
        if (!(c.copy = malloc(used))) {
            bad_batch(r, rec->file_offset, "out of memory for the reorder window");
            return;
        }
        memcpy(c.copy, c.data, used);
        c.data = c.copy;
    }
    c.p = c.data;
    c.end = c.p + used;
    vsp_codec_reset(&c.codec, r->hdr->start_monotonic_ns);
    int n = vsp_codec_decode(&c.codec, c.p, c.end, c.tid);
    if (n < 0) {
        bad_batch(r, c.data_offset, "undecodable event in a batch");
        free(c.copy);
        return;
    }
    c.p += n;
    if (cursor_add(r, &c) < 0) {
        bad_batch(r, rec->file_offset, "out of memory for the reorder window");
        free(c.copy);
    }
}

/* A SEQMARK record: the newest complete one replaces the last (an older mark stays true: what it
 * settled stays settled, and a free it listed is waited for until it comes). */
static void take_mark(struct vsp_reader *r, const struct vsp_record *rec)
{
    const struct vsp_rec_seqmark *m = rec->payload;
    if ((m->flags & VSP_SEQMARK_PARTIAL) || m->next_seq < r->mark_next)
        return;
    if (m->n_inflight > r->mark_cap) {
        struct vsp_seqmark_free *n = realloc(r->mark_inflight, m->n_inflight * sizeof *n);
        if (!n)
            return; /* keep the older mark */
        r->mark_inflight = n;
        r->mark_cap = m->n_inflight;
    }
    if (m->n_inflight) /* (mark_inflight is NULL until the first mark that lists a free) */
        memcpy(r->mark_inflight, m + 1, m->n_inflight * sizeof *r->mark_inflight);
    r->mark_n = m->n_inflight;
    for (uint32_t i = 1; i < r->mark_n; i++) /* a few entries: insertion sort */
        for (uint32_t k = i; k > 0 && r->mark_inflight[k - 1].seq > r->mark_inflight[k].seq; k--) {
            struct vsp_seqmark_free t = r->mark_inflight[k];
            r->mark_inflight[k] = r->mark_inflight[k - 1];
            r->mark_inflight[k - 1] = t;
        }
    r->mark_next = m->next_seq;
}

/* A bound for traces whose marks stop settling anything (every one PARTIAL: more than 256 frees
 * in flight all the time): past this many waiting events the lowest goes out, as without marks. */
#define MARKED_WINDOW (1ull << 24)

/* May the window hand out `seq` although the numbers from r->expect up to it are missing? With
 * marks: when the newest mark settles them all (below its next_seq, none of them a free in
 * flight). Without (older traces): when REORDER_WINDOW events wait. */
static int gap_settled(const struct vsp_reader *r, uint64_t seq)
{
    if (!r->marks)
        return r->held > r->window;
    if (seq > r->mark_next)
        return 0;
    for (uint32_t i = 0; i < r->mark_n; i++)
        if (r->mark_inflight[i].seq >= r->expect && r->mark_inflight[i].seq < seq)
            return 0; /* a free in flight comes before it */
    return 1;
}

/* A free in flight that blocks a long time (a cudaFree behind a long kernel) while other threads
 * make millions of calls: once REORDER_WINDOW events wait and the newest mark says that the only
 * numbers missing before `seq` are such frees, the window goes past them. Memory stays bounded:
 * only the events on those frees' addresses are held (they must follow the free: the reuse of a
 * freed address), the rest go out in order. -1 when out of memory (then the window waits). */
static int pass_inflight(struct vsp_reader *r, uint64_t seq)
{
    if (!r->marks || r->held <= r->window || seq > r->mark_next)
        return 0;
    for (uint32_t i = 0; i < r->mark_n; i++) {
        const struct vsp_seqmark_free *f = &r->mark_inflight[i];
        if (f->seq < r->expect || f->seq >= seq)
            continue;
        size_t k = 0;
        while (k < r->npassed && r->passed[k].seq != f->seq)
            k++;
        if (k < r->npassed)
            continue;
        if (r->npassed == r->cap_passed) {
            size_t cap = r->cap_passed ? r->cap_passed * 2 : 16;
            struct vsp_seqmark_free *n = realloc(r->passed, cap * sizeof *n);
            if (!n)
                return -1;
            r->passed = n;
            r->cap_passed = cap;
        }
        r->passed[r->npassed++] = *f;
    }
    return 1;
}

/* What to do with an event about to be handed out while frees were passed: 1 it is one of them
 * (out now; the events held for its address follow), 2 it is on the address of one still missing
 * (held aside), 0 neither. */
static int passed_role(struct vsp_reader *r, const struct vsp_rec_event *e)
{
    for (size_t k = 0; k < r->npassed; k++) {
        if (r->passed[k].seq == e->seq) {
            r->passed[k] = r->passed[--r->npassed];
            return 1;
        }
    }
    for (size_t k = 0; k < r->npassed; k++)
        if (r->passed[k].ptr == e->ptr)
            return 2;
    return 0;
}

static int stash_event(struct vsp_reader *r, const struct vsp_rec_event *e, uint64_t pos, uint64_t off)
{
    if (r->nstash == r->cap_stash) {
        size_t cap = r->cap_stash ? r->cap_stash * 2 : 64;
        struct held_event *n = realloc(r->stash, cap * sizeof *n);
        if (!n)
            return -1;
        r->stash = n;
        r->cap_stash = cap;
    }
    r->stash[r->nstash++] = (struct held_event){*e, pos, off};
    return 0;
}

/* Hands out the first held event on `ptr` (all of them when ptr is ~0: the end), 0 when none. */
static int unstash(struct vsp_reader *r, struct vsp_record *out, uint64_t ptr)
{
    for (size_t k = 0; k < r->nstash; k++) {
        if (ptr != ~0ull && r->stash[k].ev.ptr != ptr)
            continue;
        r->cur = r->stash[k].ev;
        if (r->cur.time_ns < r->last_time)
            r->cur.time_ns = r->last_time; /* handed out late: not before what went out already */
        uint64_t pos = r->stash[k].pos, off = r->stash[k].file_offset;
        memmove(&r->stash[k], &r->stash[k + 1], (r->nstash - k - 1) * sizeof *r->stash);
        r->nstash--;
        deliver(r, out, &r->cur, pos, off);
        return 1;
    }
    return 0;
}

int vsp_reader_next(struct vsp_reader *r, struct vsp_record *rec)
{
    if (!r->reorder)
        return next_raw(r, rec);
    if (r->advance)
        advance_top(r);
    if (r->releasing) {
        if (unstash(r, rec, r->release_ptr))
            return 1;
        r->releasing = 0;
    }
    for (;;) {
        int pass = 0;
        if (r->nheap && !(r->heap[0].seq <= r->expect || r->source_rc <= 0 || r->have_barrier ||
                          gap_settled(r, r->heap[0].seq)))
            pass = pass_inflight(r, r->heap[0].seq);
        if (r->nheap && (pass > 0 || r->heap[0].seq <= r->expect || r->source_rc <= 0 || r->have_barrier ||
                         gap_settled(r, r->heap[0].seq) || (!r->marks ? 0 : r->held > MARKED_WINDOW))) {
            struct cursor *c = &r->slab[r->heap[0].slot];
            int role = r->npassed ? passed_role(r, &c->codec.last) : 0;
            if (role == 2 && stash_event(r, &c->codec.last, c->pos, c->file_offset) == 0) {
                advance_top(r); /* held aside until its free comes */
                continue;
            }
            if (role == 1) {
                /* a passed free, late: out now (its time no earlier than what went out), and the
                 * events held for its address after it */
                r->cur = c->codec.last;
                if (r->cur.time_ns < r->last_time)
                    r->cur.time_ns = r->last_time;
                deliver(r, rec, &r->cur, c->pos, c->file_offset);
                r->advance = 1;
                r->releasing = 1;
                r->release_ptr = r->cur.ptr;
                return 1;
            }
            window_pop(r, rec);
            return 1;
        }
        if ((r->have_barrier || r->source_rc <= 0) && unstash(r, rec, ~0ull))
            return 1; /* frees that never came (their thread killed): what waited for them */
        if (r->have_barrier) {
            r->have_barrier = 0;
            *rec = r->barrier;
            return 1;
        }
        if (r->source_rc <= 0)
            return r->source_rc;
        int rc = next_raw(r, rec);
        if (rc <= 0) {
            r->source_rc = rc;
            continue; /* drain what is held first */
        }
        if (rec->type == VSP_REC_BATCH) {
            open_batch(r, rec);
            continue;
        }
        if (rec->type == VSP_REC_SEQMARK) {
            take_mark(r, rec); /* (handed out too: a dump shows it) */
            return 1;
        }
        if (rec->type == VSP_REC_EVENT && rec->payload_len >= sizeof(struct vsp_rec_event)) {
            const struct vsp_rec_event *e = rec->payload;
            if (e->seq > r->expect || r->nheap || r->npassed) { /* out of order: into the window */
                struct cursor c = {.codec.last = *e, .pos = rec->pos, .file_offset = rec->file_offset,
                                   .data_offset = rec->file_offset};
                if (cursor_add(r, &c) == 0)
                    continue;
            }
            r->cur = *e; /* in order: at once (or no memory for the window: file order) */
            deliver(r, rec, &r->cur, rec->pos, rec->file_offset);
            return 1;
        }
        if (rec->type == VSP_REC_END && (r->nheap || r->nstash)) {
            r->barrier = *rec;
            r->have_barrier = 1;
            continue;
        }
        return 1;
    }
}

void vsp_reader_set_window(struct vsp_reader *r, uint64_t events)
{
    r->window = events;
}

const char *vsp_reader_error(const struct vsp_reader *r)
{
    return r->err;
}

const struct vsp_file_header *vsp_reader_header(const struct vsp_reader *r)
{
    return r->hdr;
}

void vsp_reader_stats(const struct vsp_reader *r, struct vsp_reader_stats *out)
{
    *out = r->st;
    out->complete = r->st.finalized && !r->st.torn && !r->st.truncated && !r->st.skipped_bytes &&
                    !r->err[0] && !r->st.log_failed && r->done;
}

void vsp_reader_close(struct vsp_reader *r)
{
    if (!r)
        return;
    munmap((void *)r->map, r->map_len);
    for (size_t i = 0; i < r->nheap; i++)
        free(r->slab[r->heap[i].slot].copy);
    free(r->slab);
    free(r->free_slots);
    free(r->heap);
    free(r->mark_inflight);
    free(r->passed);
    free(r->stash);
    free(r);
}
