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

struct vsp_reader {
    const unsigned char *map;
    size_t map_len;
    const struct vsp_file_header *hdr;
    uint64_t ring_size, head, tail, log_avail, pos;
    uint64_t released;     /* file offset below which mapped pages were given back */
    int done;
    char err[512];
    struct vsp_reader_stats st;
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

static int min_payload(uint16_t type)
{
    switch (type) {
    case VSP_REC_PROCESS: return (int)sizeof(struct vsp_rec_process);
    case VSP_REC_MODULE: return (int)sizeof(struct vsp_rec_module);
    case VSP_REC_STACK: return (int)sizeof(struct vsp_rec_stack);
    case VSP_REC_EVENT: return (int)sizeof(struct vsp_rec_event);
    case VSP_REC_END: return (int)sizeof(struct vsp_rec_end);
    default: return 0;
    }
}

/* Checks a record's own length fields against its type; 0 when fine. */
static int check_payload(uint16_t type, const unsigned char *p, uint32_t len)
{
    if ((int)len < min_payload(type))
        return -1;
    if (type == VSP_REC_STACK) {
        const struct vsp_rec_stack *s = (const void *)p;
        if ((uint64_t)s->nframes * 8 > len - sizeof *s)
            return -1;
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
    if (check_payload(h->type, (const unsigned char *)(h + 1), h->len - (uint32_t)sizeof *h) < 0)
        return corrupt(r, off, "record fields overrun the record");
    r->pos = pos + h->len;
    /* Streaming: give back the pages behind the cursor every 64 MiB, so resident memory does not
     * grow with the trace (they are file-backed: touching a record again just reads it back). */
    if (off - r->released > (64u << 20)) {
        uint64_t upto = off & ~(uint64_t)0xfffff;
        madvise((void *)(r->map + r->released), (size_t)(upto - r->released), MADV_DONTNEED);
        r->released = upto;
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
        if (seq == (pos | VSP_SEQ_VALID | VSP_SEQ_COMMITTED) && lenok &&
            check_payload(h->type, (const unsigned char *)(h + 1), h->len - (uint32_t)sizeof *h) == 0) {
            r->pos = pos + h->len;
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

int vsp_reader_next(struct vsp_reader *r, struct vsp_record *rec)
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
    free(r);
}
