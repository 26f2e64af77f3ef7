/* Test fixture: a trace file with a ring, set up the way the shim's trace.c does, for unit tests
 * of the ring and of the reader without preloading anything. */
#ifndef VSP_TEST_RING_FIXTURE_H
#define VSP_TEST_RING_FIXTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring.h"

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

/* Write one record of `type` whose payload is a then b (b may be NULL), commit it and drain what
 * can be drained. 0, or the reservation's -errno. */
static inline int ring_fixture_put(struct ring_fixture *f, uint16_t type, const void *a, size_t alen, const void *b,
                                   size_t blen)
{
    struct vsp_resv res;
    int rc = vsp_ring_reserve(&f->ring, type, (uint32_t)(alen + blen), &res);
    if (rc < 0)
        return rc;
    memcpy(res.payload, a, alen);
    if (blen)
        memcpy((unsigned char *)res.payload + alen, b, blen);
    vsp_ring_commit(&f->ring, &res);
    vsp_ring_flush(&f->ring, 0);
    return 0;
}

#endif
