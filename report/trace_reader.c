/* Trace reader (see trace_reader.h). The stream is read from the log while pos < tail and from the
 * ring after that; in the ring a record counts only if its seq word names its own position, which
 * tells written records from stale bytes of an earlier lap. A record reserved but not committed
 * (the process died inside the call) is stepped over by its length; bytes that hold no record
 * (a writer killed between reserving and marking) are skipped by scanning for the next seq word
 * that names its own position. */
#include "trace_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* An event waiting in the reorder window: its seq and where its record is (re-read on delivery). */
struct held {
    uint64_t seq;
    uint64_t pos;
    uint64_t file_offset;
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
    struct held *win;         /* [whead, wtail): held events sorted by seq */
    size_t whead, wtail, wcap;
    struct vsp_record barrier; /* an END record waiting for the window to drain */
    int have_barrier;
    int source_rc;            /* 1 while the file has more; then 0 (end) or -1 (corrupt) */
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
    r->st.dropped = h->dropped;
    r->reorder = h->version >= 2;
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
    case VSP_REC_END: return (int)sizeof(struct vsp_rec_end);
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
        if (s->nframes > VSP_READER_MAX_FRAMES)
            return -2;
    } else if (type == VSP_REC_MODULE) {
        const struct vsp_rec_module *m = (const void *)p;
        if ((uint64_t)m->path_len + m->build_id_len > len - sizeof *m || m->path_len == 0)
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
        /* not the pages of events still waiting in the reorder window: they are read again */
        uint64_t keep = off;
        for (size_t i = r->whead; i < r->wtail; i++)
            if (r->win[i].file_offset < keep)
                keep = r->win[i].file_offset;
        uint64_t upto = keep & ~(uint64_t)0xfffff;
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

/* ---- the reorder window (version 2) ----
 * A free's record is written after its real call returned (nothing is held across a call that may
 * block), so it can reach the file after events that follow it in seq order — above all the
 * allocation that reuses its address, which can only happen after the real free returned, that
 * is a moment before the free's record is written. So every event waits until REORDER_WINDOW more
 * events have been read, and the held ones leave in seq order: a record that is late by fewer
 * than REORDER_WINDOW events (about a third of a second of a storm of allocations on every
 * thread) is put back in its place. Other records pass at once: each was written before the
 * events that name it, and events are only ever delayed. An END record waits until every held
 * event is out. Held events are kept as file offsets (16 MiB at most for the window) and read
 * again on delivery; the file stays mapped. */
#define REORDER_WINDOW (1u << 20)

static int window_insert(struct vsp_reader *r, uint64_t seq, const struct vsp_record *rec)
{
    if (r->wtail == r->wcap) {
        if (r->whead > 0) { /* slide down: amortised O(1), the buffer is twice the window */
            memmove(r->win, r->win + r->whead, (r->wtail - r->whead) * sizeof *r->win);
            r->wtail -= r->whead;
            r->whead = 0;
        }
        if (r->wtail == r->wcap) {
            size_t cap = r->wcap ? r->wcap * 2 : 4096;
            struct held *w = realloc(r->win, cap * sizeof *w);
            if (!w)
                return -1;
            r->win = w;
            r->wcap = cap;
        }
    }
    /* Almost always in order: scan back a little, then bisect. */
    size_t i = r->wtail;
    for (int steps = 0; i > r->whead && r->win[i - 1].seq > seq && steps < 16; steps++)
        i--;
    if (i > r->whead && r->win[i - 1].seq > seq) {
        size_t lo = r->whead, hi = i;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (r->win[mid].seq > seq)
                hi = mid;
            else
                lo = mid + 1;
        }
        i = lo;
    }
    memmove(r->win + i + 1, r->win + i, (r->wtail - i) * sizeof *r->win);
    r->win[i] = (struct held){seq, rec->pos, rec->file_offset};
    r->wtail++;
    return 0;
}

static void window_pop(struct vsp_reader *r, struct vsp_record *out)
{
    const struct held *h = &r->win[r->whead++];
    const struct vsp_rec_hdr *rh = (const void *)(r->map + h->file_offset);
    out->pos = h->pos;
    out->file_offset = h->file_offset;
    out->type = rh->type;
    out->payload_len = rh->len - (uint32_t)sizeof *rh;
    out->payload = rh + 1;
}

int vsp_reader_next(struct vsp_reader *r, struct vsp_record *rec)
{
    if (!r->reorder)
        return next_raw(r, rec);
    for (;;) {
        size_t held = r->wtail - r->whead;
        if (held && (held > REORDER_WINDOW || r->source_rc <= 0 || r->have_barrier)) {
            window_pop(r, rec);
            return 1;
        }
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
        if (rec->type == VSP_REC_EVENT && rec->payload_len >= sizeof(struct vsp_rec_event)) {
            if (window_insert(r, ((const struct vsp_rec_event *)rec->payload)->seq, rec) < 0)
                return 1; /* no memory for the window: deliver in file order */
            continue;
        }
        if (rec->type == VSP_REC_END && held) {
            r->barrier = *rec;
            r->have_barrier = 1;
            continue;
        }
        return 1;
    }
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
    free(r->win);
    free(r);
}
