/* Test fixture: a trace file with a ring, set up the way the shim's trace.c does, for unit tests
 * of the ring and of the reader without preloading anything. */
#ifndef VSP_TEST_RING_FIXTURE_H
#define VSP_TEST_RING_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/base/ring.h"

struct ring_fixture {
    char path[256];
    int fd;
    void *map;
    size_t len;
    struct vsp_ring ring;
};

static inline int ring_fixture_open(struct ring_fixture *f, uint64_t ring_size, int on_full)
{
    snprintf(f->path, sizeof f->path, "/tmp/vsp-ring-XXXXXX");
    f->fd = mkstemp(f->path);
    if (f->fd < 0)
        return -1;
    f->len = VSP_HEADER_SIZE + ring_size;
    if (ftruncate(f->fd, (off_t)f->len) < 0)
        return -1;
    f->map = mmap(NULL, f->len, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    if (f->map == MAP_FAILED)
        return -1;
    struct vsp_file_header *h = f->map;
    memcpy(h->magic, VSP_TRACE_MAGIC, VSP_TRACE_MAGIC_LEN);
    h->version = VSP_TRACE_VERSION;
    h->header_size = VSP_HEADER_SIZE;
    h->ring_offset = VSP_HEADER_SIZE;
    h->ring_size = ring_size;
    h->log_offset = VSP_HEADER_SIZE + ring_size;
    vsp_ring_attach(&f->ring, h, f->fd, on_full);
    return 0;
}

static inline void ring_fixture_close(struct ring_fixture *f)
{
    munmap(f->map, f->len);
    close(f->fd);
    unlink(f->path);
}

/* Write one EVENT record whose ptr field is `tag`. */
static inline int ring_fixture_event(struct ring_fixture *f, uint64_t tag, int commit)
{
    struct vsp_resv res;
    int rc = vsp_ring_reserve(&f->ring, VSP_REC_EVENT, sizeof(struct vsp_rec_event), &res);
    if (rc < 0)
        return rc;
    struct vsp_rec_event *e = res.payload;
    memset(e, 0, sizeof *e);
    e->ptr = tag;
    e->op = VSP_OP_ALLOC;
    e->api = VSP_API_cudaMalloc;
    e->size = 64;
    e->seq = __atomic_fetch_add(&f->ring.hdr->next_seq, 1, __ATOMIC_RELAXED);
    if (commit)
        vsp_ring_commit(&f->ring, &res);
    return 0;
}

/* Write one record of `type` whose payload is a, then b, then c (b and c may be NULL with a length
 * of 0) and commit it, leaving it in the ring. 0, or the reservation's -errno. */
static inline int ring_fixture_write(struct ring_fixture *f, uint16_t type, const void *a, size_t alen, const void *b,
                                     size_t blen, const void *c, size_t clen)
{
    struct vsp_resv res;
    int rc = vsp_ring_reserve(&f->ring, type, (uint32_t)(alen + blen + clen), &res);
    if (rc < 0)
        return rc;
    unsigned char *p = res.payload;
    memcpy(p, a, alen);
    if (blen)
        memcpy(p + alen, b, blen);
    if (clen)
        memcpy(p + alen + blen, c, clen);
    vsp_ring_commit(&f->ring, &res);
    return 0;
}

/* Write one record of `type` whose payload is a then b (b may be NULL), commit it and drain what
 * can be drained. 0, or the reservation's -errno. */
static inline int ring_fixture_put(struct ring_fixture *f, uint16_t type, const void *a, size_t alen, const void *b,
                                   size_t blen)
{
    int rc = ring_fixture_write(f, type, a, alen, b, blen, NULL, 0);
    if (rc < 0)
        return rc;
    vsp_ring_flush(&f->ring, 0);
    return 0;
}

/* Keep the trace as the file `path` and let the fixture go (mapping and descriptor closed): with
 * `complete`, drained to the end and marked complete first, as the shim leaves it at exit; without,
 * as a killed process leaves it, records still in the ring. 0, or the rename's -errno. */
static inline int ring_fixture_keep(struct ring_fixture *f, const char *path, int complete)
{
    if (complete) {
        vsp_ring_flush(&f->ring, 1);
        f->ring.hdr->flags |= VSP_FLAG_COMPLETE;
    }
    msync(f->map, f->len, MS_SYNC);
    int rc = rename(f->path, path) < 0 ? -errno : 0;
    munmap(f->map, f->len);
    close(f->fd);
    return rc;
}

#endif
