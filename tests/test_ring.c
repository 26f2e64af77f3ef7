/* Unit tests of the trace ring (shim/base/ring.c) read back through the real reader: order, wrap-around
 * into the log, many writers at once with nothing lost, drop mode, and records left in the ring
 * by a process that never finalised (including one reserved but never committed). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>

#include "ring_fixture.h"
#include "report/read/trace_reader.h"

static uint64_t read_tags(const char *path, uint64_t *tags, uint64_t max, struct vsp_reader_stats *st)
{
    char err[600];
    struct vsp_reader *r = vsp_reader_open(path, err, sizeof err);
    cr_assert_not_null(r, "reader: %s", err);
    struct vsp_record rec;
    uint64_t n = 0;
    int rc;
    while ((rc = vsp_reader_next(r, &rec)) > 0) {
        cr_assert_eq(rec.type, VSP_REC_EVENT);
        const struct vsp_rec_event *e = rec.payload;
        if (n < max)
            tags[n] = e->ptr;
        n++;
    }
    cr_assert_eq(rc, 0, "reader error: %s", vsp_reader_error(r));
    vsp_reader_stats(r, st);
    vsp_reader_close(r);
    return n;
}

Test(ring, records_come_back_in_order_across_many_laps)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    const uint64_t n = 50000; /* ~5 MB of records through a 64 KiB ring: ~80 laps */
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(ring_fixture_event(&f, i + 1, 1), 0);
    cr_assert_gt(f.ring.hdr->tail, 0, "the ring must have drained into the log");
    static uint64_t tags[50000];
    struct vsp_reader_stats st;
    cr_assert_eq(read_tags(f.path, tags, n, &st), n);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_eq(tags[i], i + 1, "record %lu out of order", (unsigned long)i);
    cr_assert_eq(st.torn, 0);
    cr_assert_eq(st.skipped_bytes, 0);
    ring_fixture_close(&f);
}

struct writer_arg {
    struct ring_fixture *f;
    uint64_t id, count;
};

static void *writer(void *p)
{
    struct writer_arg *a = p;
    for (uint64_t i = 0; i < a->count; i++)
        ring_fixture_event(a->f, (a->id << 32) | (i + 1), 1);
    return NULL;
}

Test(ring, concurrent_writers_lose_nothing_and_keep_per_thread_order)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    enum { W = 6, PER = 40000 };
    pthread_t t[W];
    struct writer_arg a[W];
    for (int i = 0; i < W; i++) {
        a[i] = (struct writer_arg){&f, (uint64_t)i + 1, PER};
        pthread_create(&t[i], NULL, writer, &a[i]);
    }
    for (int i = 0; i < W; i++)
        pthread_join(t[i], NULL);
    vsp_ring_flush(&f.ring, 1);
    static uint64_t tags[W * PER];
    struct vsp_reader_stats st;
    cr_assert_eq(read_tags(f.path, tags, W * PER, &st), (uint64_t)W * PER);
    uint64_t next[W + 1] = {0};
    for (uint64_t i = 0; i < (uint64_t)W * PER; i++) {
        uint64_t w = tags[i] >> 32, seq = tags[i] & 0xffffffffu;
        cr_assert(w >= 1 && w <= W);
        cr_assert_eq(seq, next[w] + 1, "writer %lu: got %lu after %lu", (unsigned long)w, (unsigned long)seq,
                     (unsigned long)next[w]);
        next[w] = seq;
    }
    cr_assert_eq(f.ring.hdr->dropped, 0);
    ring_fixture_close(&f);
}

Test(ring, drop_mode_counts_what_it_drops)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_DROP), 0);
    /* One record stays uncommitted, so the drainer cannot pass it: the ring fills and drops. */
    cr_assert_eq(ring_fixture_event(&f, 1, 0), 0);
    uint64_t written = 0, dropped = 0;
    for (int i = 0; i < 2000; i++) {
        if (ring_fixture_event(&f, (uint64_t)i + 2, 1) == 0)
            written++;
        else
            dropped++;
    }
    cr_assert_gt(dropped, 0);
    cr_assert_eq(f.ring.hdr->dropped, dropped);
    static uint64_t tags[4000];
    struct vsp_reader_stats st;
    uint64_t n = read_tags(f.path, tags, 4000, &st);
    cr_assert_eq(n, written, "every record that was not dropped is readable");
    cr_assert_eq(st.torn, 1, "the uncommitted record is reported as torn");
    cr_assert_eq(st.dropped, dropped);
    ring_fixture_close(&f);
}

Test(ring, unfinalised_ring_is_readable_with_torn_record_skipped)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    for (int i = 0; i < 100; i++)
        ring_fixture_event(&f, (uint64_t)i + 1, 1);
    ring_fixture_event(&f, 999, 0); /* "killed" inside this call */
    for (int i = 100; i < 150; i++)
        ring_fixture_event(&f, (uint64_t)i + 1, 1);
    /* no flush, no finalisation: everything is only in the ring */
    cr_assert_eq(f.ring.hdr->tail, 0);
    static uint64_t tags[200];
    struct vsp_reader_stats st;
    cr_assert_eq(read_tags(f.path, tags, 200, &st), 150);
    cr_assert_eq(tags[99], 100);
    cr_assert_eq(tags[100], 101, "records after the torn one are kept");
    cr_assert_eq(st.torn, 1);
    cr_assert_eq(st.complete, 0);
    ring_fixture_close(&f);
}

Test(ring, oversized_record_is_refused)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_resv res;
    cr_assert_eq(vsp_ring_reserve(&f.ring, VSP_REC_NOTE, 64 * 1024, &res), -E2BIG);
    ring_fixture_close(&f);
}
