/* Trace format 3's compact events: the codec (include/vramspy/event_codec.h) round-trips every
 * field and rejects bytes that are not an event; batches (shim/base/ring.c) from many threads come back
 * whole and in sequence order, are readable while still open (a killed process), never stall other
 * threads when their owner goes idle, follow the records their events name, and a storm recorded
 * by the shim costs at most 32 bytes an event. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include "harness.h"
#include "ring_fixture.h"
#include "report/read/trace_reader.h"
#include "shim/base/tcount.h"
#include "vramspy/event_codec.h"

static struct vsp_rec_event sample_event(uint64_t i)
{
    struct vsp_rec_event e = {0};
    e.time_ns = 1000000000ull + i * 977;
    e.ptr = 0x7f0000000000ull + (i % 7) * 0x100000;
    e.size = i % 3 ? 4096 * i : 0;
    e.flags = i % 5 == 0 ? 2 : 0;
    e.stream = i % 4 == 0 ? 0x5555deadbeefull : 0;
    e.aux = i % 6 == 0 ? i * 64 : 0;
    e.free_bytes = i % 9 == 0 ? 123456789ull * i : VSP_UNKNOWN_BYTES;
    e.total_bytes = i % 9 == 0 ? 80ull << 30 : VSP_UNKNOWN_BYTES;
    e.stack_id = (uint32_t)(i * 31 % 1000);
    e.tid = 4242;
    e.result = i % 8 == 0 ? (i % 16 ? 2 : -7) : 0;
    e.device = i % 11 == 0 ? -1 : (int32_t)(i % 2);
    e.api = (uint16_t)(i % 13 == 0 ? 300 : 1 + i % 76);
    e.op = (uint8_t)(1 + i % 7);
    e.memory = (uint8_t)(i % VSP_MEM_COUNT_);
    e.eflags = i % 10 == 0 ? (VSP_EVENT_GRAPH | (7u << VSP_EVENT_LABEL_SHIFT)) : 0;
    e.seq = i * 3 + (i % 2);
    return e;
}

Test(codec, every_field_round_trips_including_extremes)
{
    static unsigned char buf[1000 * VSP_CODEC_MAX];
    struct vsp_codec enc, dec;
    vsp_codec_reset(&enc, 999);
    vsp_codec_reset(&dec, 999);
    size_t len = 0;
    struct vsp_rec_event extreme = {.time_ns = 0, .ptr = UINT64_MAX, .size = UINT64_MAX, .flags = UINT64_MAX,
                                    .stream = UINT64_MAX - 1, .aux = 1, .free_bytes = 0, .total_bytes = UINT64_MAX - 1,
                                    .stack_id = UINT32_MAX, .tid = 4242, .result = INT32_MIN, .device = INT32_MIN,
                                    .api = UINT16_MAX, .op = 7, .memory = 15, .eflags = UINT32_MAX,
                                    .seq = UINT64_MAX - 5};
    for (uint64_t i = 0; i < 1000; i++) {
        struct vsp_rec_event e = i == 500 ? extreme : sample_event(i);
        unsigned n = vsp_codec_encode(&enc, &e, buf + len);
        cr_assert_leq(n, VSP_CODEC_MAX);
        len += n;
    }
    const unsigned char *p = buf, *end = buf + len;
    for (uint64_t i = 0; i < 1000; i++) {
        struct vsp_rec_event want = i == 500 ? extreme : sample_event(i);
        int n = vsp_codec_decode(&dec, p, end, 4242);
        cr_assert_gt(n, 0, "event %llu decodes", (unsigned long long)i);
        cr_assert_eq(memcmp(&want, &dec.last, sizeof want), 0, "event %llu comes back field for field",
                     (unsigned long long)i);
        p += n;
    }
    cr_assert_eq(p, end);
}

Test(codec, typical_allocation_and_free_take_a_few_bytes)
{
    unsigned char buf[VSP_CODEC_MAX];
    struct vsp_codec c;
    vsp_codec_reset(&c, 1000000000ull);
    struct vsp_rec_event a = {.time_ns = 1000050000ull, .ptr = 0x7f1234500000ull, .size = 1 << 20, .stack_id = 3,
                              .api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE, .seq = 0,
                              .free_bytes = VSP_UNKNOWN_BYTES, .total_bytes = VSP_UNKNOWN_BYTES};
    vsp_codec_encode(&c, &a, buf); /* the batch's first event carries absolute values */
    struct vsp_rec_event f = a;
    f.op = VSP_OP_FREE;
    f.api = VSP_API_cudaFree;
    f.time_ns += 800;
    f.stack_id = 4;
    f.seq = 1;
    cr_assert_leq(vsp_codec_encode(&c, &f, buf), 8, "a free of the block just allocated");
    struct vsp_rec_event b = a;
    b.time_ns = f.time_ns + 3000;
    b.ptr += 0x300000;
    b.size = 3 << 20;
    b.seq = 5;
    cr_assert_leq(vsp_codec_encode(&c, &b, buf), 14, "an allocation near the last one");
}

Test(codec, bytes_that_are_not_a_whole_event_are_rejected)
{
    unsigned char buf[VSP_CODEC_MAX];
    struct vsp_codec enc, dec;
    vsp_codec_reset(&enc, 0);
    struct vsp_rec_event e = sample_event(9); /* has the extension byte and several fields */
    unsigned n = vsp_codec_encode(&enc, &e, buf);
    for (unsigned cut = 0; cut < n; cut++) {
        vsp_codec_reset(&dec, 0);
        cr_assert_eq(vsp_codec_decode(&dec, buf, buf + cut, 1), -1, "a prefix of %u of %u bytes", cut, n);
    }
    /* an 11-byte varint, an unknown extension bit */
    unsigned char longv[] = {1, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0};
    vsp_codec_reset(&dec, 0);
    cr_assert_eq(vsp_codec_decode(&dec, longv, longv + sizeof longv, 1), -1);
    unsigned char badx[] = {0x81, 0x08, 0, 0, 0, 0, 0, 0x80};
    vsp_codec_reset(&dec, 0);
    cr_assert_eq(vsp_codec_decode(&dec, badx, badx + sizeof badx, 1), -1);
}

/* ---- batches in the ring ---- */

struct appender {
    struct ring_fixture *f;
    uint32_t id;
    uint64_t n;
    int idle_after_one; /* append one event, then wait for `release` */
    int *release;
    int failed;         /* appends that failed (checked by the main thread: no cr_assert in threads) */
};

static int append(struct ring_fixture *f, struct vsp_batch *tb, uint32_t id, uint64_t i)
{
    struct vsp_rec_event e = {.api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .memory = VSP_MEM_DEVICE,
                              .ptr = ((uint64_t)id << 32) | i, .size = 256 + i % 64 * 512, .time_ns = i,
                              .tid = 1000 + id, .stack_id = id};
    return vsp_ring_append_event(&f->ring, tb, &e, 1);
}

static void *appender_main(void *arg)
{
    struct appender *a = arg;
    struct vsp_batch tb = {0};
    for (uint64_t i = 1; i <= a->n; i++) {
        if (append(a->f, &tb, a->id, i) != 0)
            a->failed++;
        if (a->idle_after_one)
            while (!__atomic_load_n(a->release, __ATOMIC_ACQUIRE))
                sched_yield();
    }
    return NULL;
}

/* Reads every event; checks seq order, per-writer order and the tid; returns the count. */
static uint64_t read_all(const char *path, unsigned writers, struct vsp_reader_stats *st)
{
    char err[600];
    struct vsp_reader *r = vsp_reader_open(path, err, sizeof err);
    cr_assert_not_null(r, "reader: %s", err);
    struct vsp_record rec;
    uint64_t n = 0, next[64] = {0};
    int rc;
    while ((rc = vsp_reader_next(r, &rec)) > 0) {
        if (rec.type != VSP_REC_EVENT)
            continue;
        const struct vsp_rec_event *e = rec.payload;
        cr_assert_eq(e->seq, n, "event %llu delivered where %llu belongs", (unsigned long long)e->seq,
                     (unsigned long long)n);
        uint32_t w = (uint32_t)(e->ptr >> 32);
        cr_assert(w >= 1 && w <= writers, "writer %u", w);
        cr_assert_eq(e->ptr & 0xffffffffu, next[w] + 1, "writer %u's events in its own order", w);
        cr_assert_eq(e->tid, 1000 + w);
        cr_assert_eq(e->stack_id, w);
        cr_assert_eq(e->size, 256 + (e->ptr & 0xffffffffu) % 64 * 512);
        next[w]++;
        n++;
    }
    cr_assert_eq(rc, 0, "reader error: %s", vsp_reader_error(r));
    vsp_reader_stats(r, st);
    vsp_reader_close(r);
    return n;
}

Test(batch, many_threads_batches_come_back_whole_and_in_sequence_order)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    enum { W = 4, PER = 30000 };
    pthread_t t[W];
    struct appender a[W];
    for (int i = 0; i < W; i++) {
        a[i] = (struct appender){&f, (uint32_t)i + 1, PER, 0, NULL, 0};
        pthread_create(&t[i], NULL, appender_main, &a[i]);
    }
    for (int i = 0; i < W; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].failed, 0);
    }
    vsp_ring_flush(&f.ring, 1);
    cr_assert_eq(f.ring.hdr->head, f.ring.hdr->tail, "finalisation closed and copied every batch");
    struct vsp_reader_stats st;
    cr_assert_eq(read_all(f.path, W, &st), (uint64_t)W * PER);
    cr_assert_eq(st.torn, 0);
    cr_assert_eq(f.ring.hdr->dropped, 0);
    struct stat sb;
    cr_assert_eq(stat(f.path, &sb), 0);
    cr_assert_lt((double)(sb.st_size - VSP_HEADER_SIZE) / (W * PER), 16.0, "%lld bytes for %d events",
                 (long long)sb.st_size, W * PER);
    ring_fixture_close(&f);
}

Test(batch, open_batches_of_a_killed_process_are_read_up_to_their_count)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_batch tb1 = {0}, tb2 = {0};
    for (uint64_t i = 1; i <= 50; i++) {
        cr_assert_eq(append(&f, &tb1, 1, i), 0);
        cr_assert_eq(append(&f, &tb2, 2, i), 0);
    }
    /* "killed": no close, no flush; both batches are only reserved in the ring */
    cr_assert_eq(f.ring.hdr->tail, 0);
    cr_assert_eq(tb1.rec->seq, tb1.pos | VSP_SEQ_VALID, "still open");
    struct vsp_reader_stats st;
    cr_assert_eq(read_all(f.path, 2, &st), 100);
    cr_assert_eq(st.torn, 0, "an open batch is not a torn record");
    ring_fixture_close(&f);
}

Test(batch, idle_owner_never_stalls_other_threads, .timeout = 60)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    int release = 0;
    struct appender idle = {&f, 1, 1, 1, &release, 0};
    struct appender busy = {&f, 2, 100000, 0, NULL, 0};
    pthread_t ti, tb;
    pthread_create(&ti, NULL, appender_main, &idle);
    while (!__atomic_load_n(&f.ring.hdr->next_seq, __ATOMIC_ACQUIRE))
        sched_yield(); /* the idle thread's batch is open */
    /* ~1.5 MB of events through 64 KiB while the first batch stays open: the drainer closes it */
    pthread_create(&tb, NULL, appender_main, &busy);
    pthread_join(tb, NULL);
    __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
    pthread_join(ti, NULL);
    cr_assert_eq(idle.failed + busy.failed, 0);
    vsp_ring_flush(&f.ring, 1);
    struct vsp_reader_stats st;
    cr_assert_eq(read_all(f.path, 2, &st), 100001);
    ring_fixture_close(&f);
}

static void *one_call(void *arg)
{
    struct appender *a = arg;
    struct vsp_batch tb = {0}; /* a new thread's: the smallest batch */
    a->failed += append(a->f, &tb, a->id, 1) != 0;
    a->failed += append(a->f, &tb, a->id, 2) != 0;
    return NULL; /* gone with its batch open: the drainer closes it */
}

/* A thread that makes one allocation and one free costs one small batch, not a full-size one. */
Test(batch, threads_of_one_call_take_a_small_batch_each)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        struct appender a = {&f, (uint32_t)(i % 60) + 1, 2, 0, NULL, 0};
        pthread_t t;
        pthread_create(&t, NULL, one_call, &a);
        pthread_join(t, NULL);
        cr_assert_eq(a.failed, 0);
    }
    vsp_ring_flush(&f.ring, 1);
    cr_assert_eq(f.ring.hdr->next_seq, 2 * N);
    double per = (double)f.ring.hdr->head / (2 * N);
    cr_assert_leq(per, VSP_BATCH_MIN_BYTES / 2.0 + 8, "%.1f stream bytes an event", per);
    char err[600];
    struct vsp_reader *r = vsp_reader_open(f.path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    struct vsp_record rec;
    int events = 0;
    while (vsp_reader_next(r, &rec) > 0)
        events += rec.type == VSP_REC_EVENT;
    cr_assert_eq(events, 2 * N);
    vsp_reader_close(r);
    ring_fixture_close(&f);
}

Test(batch, events_come_after_the_records_they_name)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_batch tb = {0};
    cr_assert_eq(append(&f, &tb, 1, 1), 0); /* opens a batch */
    struct vsp_rec_stack s = {.id = 7, .nframes = 1};
    uint64_t frame = 0x401000;
    cr_assert_eq(ring_fixture_put(&f, VSP_REC_STACK, &s, sizeof s, &frame, sizeof frame), 0);
    struct vsp_rec_event e = {.api = VSP_API_cudaMalloc, .op = VSP_OP_ALLOC, .ptr = 0x99, .stack_id = 7, .tid = 1};
    cr_assert_eq(vsp_ring_append_event(&f.ring, &tb, &e, 1), 0);
    vsp_ring_flush(&f.ring, 1);
    char err[600];
    struct vsp_reader *r = vsp_reader_open(f.path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    struct vsp_record rec;
    uint64_t stack_pos = UINT64_MAX;
    int events = 0;
    while (vsp_reader_next(r, &rec) > 0) {
        if (rec.type == VSP_REC_STACK)
            stack_pos = rec.pos;
        if (rec.type == VSP_REC_EVENT && ((const struct vsp_rec_event *)rec.payload)->stack_id == 7) {
            cr_assert_neq(stack_pos, UINT64_MAX, "the stack record comes first");
            cr_assert_gt(rec.pos, stack_pos, "the event's batch is after the stack record");
        }
        events += rec.type == VSP_REC_EVENT;
    }
    cr_assert_eq(events, 2);
    vsp_reader_close(r);
    ring_fixture_close(&f);
}

/* While its owner appends (WRITING, set by the owner's claim), a batch is left open by the drainer,
 * which copies what comes before it and nothing of it; once the owner's count clears WRITING, the
 * next drain closes and copies it whole. The owner's count is a plain store (issue 22), so the
 * drainer must never set CLOSED under it: that close would be lost. */
Test(batch, drainer_leaves_a_batch_its_owner_is_appending_to_for_its_next_pass)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_batch tb = {0};
    cr_assert_eq(append(&f, &tb, 1, 1), 0);
    struct vsp_rec_batch *b = vsp_batch_of(&tb);
    uint64_t s = b->state;
    b->state = s | VSP_BATCH_WRITING; /* the owner, between its claim and its count */
    vsp_ring_flush(&f.ring, 0);
    cr_assert_eq(f.ring.hdr->tail, tb.pos, "nothing of the batch copied while its owner writes");
    cr_assert_eq(b->state, s | VSP_BATCH_WRITING, "and its state word untouched (no CLOSED under the owner)");
    cr_assert_eq(tb.rec->seq, tb.pos | VSP_SEQ_VALID, "still open");
    b->state = s; /* the owner's count */
    vsp_ring_flush(&f.ring, 0);
    cr_assert_eq(f.ring.hdr->tail, f.ring.hdr->head, "closed and copied at the next pass");
    cr_assert(b->state & VSP_BATCH_CLOSED);
    cr_assert_eq(append(&f, &tb, 1, 2), 0, "the owner opens a new batch");
    cr_assert_neq(vsp_batch_of(&tb), b);
    vsp_ring_flush(&f.ring, 1);
    struct vsp_reader_stats st;
    cr_assert_eq(read_all(f.path, 1, &st), 2);
    ring_fixture_close(&f);
}

/* A signal handler's call that interrupts this thread's own append (one on an alternate stack is
 * recorded, not nested) must not write into the batch under it: its event is dropped and counted,
 * and the interrupted append's batch is unchanged. */
Test(batch, append_that_interrupts_the_threads_own_append_is_dropped_and_counted)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_batch tb = {0};
    cr_assert_eq(append(&f, &tb, 1, 1), 0);
    uint64_t state = vsp_batch_of(&tb)->state;
    tb.busy = 1; /* as inside vsp_ring_append_event when the handler runs */
    cr_assert_eq(append(&f, &tb, 1, 2), -ENOSPC);
    cr_assert_eq(f.ring.hdr->dropped, 1);
    cr_assert_eq(vsp_batch_of(&tb)->state, state, "the batch under it is untouched");
    tb.busy = 0;
    cr_assert_eq(append(&f, &tb, 1, 2), 0);
    ring_fixture_close(&f);
}

/* A free's number is in flight in the thread's own slot (its counter stripe's index). A second
 * free of the same thread before the first ended (a signal handler on an alternate stack, which is
 * recorded) must not take that slot: ending it would settle the first one's number while its real
 * free still runs. It takes a shared slot; the thread's own is back once the first free ends. */
Test(batch, a_free_that_finds_its_threads_own_in_flight_slot_taken_takes_a_shared_one)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    int own = vsp_tc_self()->index, s1, s2, s3;
    cr_assert_geq(own, 0, "the test thread has a stripe");
    uint64_t q1 = vsp_ring_seq_begin(&f.ring, 0x10, &s1);
    cr_assert_eq(s1, own, "the thread's own slot");
    uint64_t q2 = vsp_ring_seq_begin(&f.ring, 0x20, &s2); /* the handler's free */
    cr_assert_gt(q2, q1);
    cr_assert(s2 >= 0 && s2 != s1, "a shared slot, not the one in use (%d)", s2);
    vsp_ring_seq_end(s2);
    cr_assert_eq(vsp_ring_seq_begin(&f.ring, 0x30, &s3) > q2, 1);
    cr_assert_neq(s3, own, "still in use by the first free");
    vsp_ring_seq_end(s3);
    vsp_ring_seq_end(s1);
    vsp_ring_seq_begin(&f.ring, 0x40, &s3);
    cr_assert_eq(s3, own, "free again once the first free ended");
    vsp_ring_seq_end(s3);
    ring_fixture_close(&f);
}

/* An append left by a jump (a handler's siglongjmp out of the hook; core.c abandons the hook at the
 * thread's next call): its claim on the batch is dropped and the batch closed, the thread's next
 * event goes into a new batch, and every counted event reads back. */
Test(batch, append_left_by_a_jump_closes_its_batch_and_the_next_event_starts_a_new_one)
{
    struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    struct vsp_batch tb = {0};
    cr_assert_eq(append(&f, &tb, 1, 1), 0);
    struct vsp_rec_batch *b = vsp_batch_of(&tb);
    b->state |= VSP_BATCH_WRITING; /* as the jump left it: claimed, the event not counted */
    tb.busy = 1;
    vsp_ring_append_abandoned(&f.ring, &tb);
    cr_assert_eq(tb.busy, 0);
    cr_assert_null(tb.rec);
    cr_assert_eq(b->state & (VSP_BATCH_WRITING | VSP_BATCH_CLOSED), VSP_BATCH_CLOSED, "claim dropped, closed");
    cr_assert_eq(append(&f, &tb, 1, 2), 0);
    cr_assert_neq(vsp_batch_of(&tb), b, "a new batch");
    vsp_ring_flush(&f.ring, 1);
    cr_assert_eq(f.ring.hdr->tail, f.ring.hdr->head, "nothing left open");
    struct vsp_reader_stats st;
    cr_assert_eq(read_all(f.path, 1, &st), 2);
    ring_fixture_close(&f);
}

/* A batch's count past its record, and bytes that are no event: one clear error with the offset,
 * after the events before it. */
Test(batch, corrupt_batch_gives_an_error_with_its_offset)
{
    for (int k = 0; k < 2; k++) {
        struct ring_fixture f;
        cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
        struct vsp_batch tb = {.next_bytes = VSP_BATCH_MAX_BYTES}; /* all ten in one batch */
        for (uint64_t i = 1; i <= 10; i++)
            cr_assert_eq(append(&f, &tb, 1, i), 0);
        cr_assert_eq(tb.pos, 0, "one batch");
        uint64_t used = vsp_batch_of(&tb)->state & VSP_BATCH_USED_MASK;
        unsigned char *data = (unsigned char *)(vsp_batch_of(&tb) + 1);
        if (k == 0) {
            vsp_batch_of(&tb)->state += 100000; /* count past the record */
        } else {
            memset(data + used, 0xff, 4); /* an event of four 0xff bytes: a varint that never ends */
            vsp_batch_of(&tb)->state += 4;
        }
        char err[600];
        struct vsp_reader *r = vsp_reader_open(f.path, err, sizeof err);
        cr_assert_not_null(r, "%s", err);
        struct vsp_record rec;
        int rc, events = 0;
        while ((rc = vsp_reader_next(r, &rec)) > 0)
            events += rec.type == VSP_REC_EVENT;
        cr_assert_eq(rc, -1);
        cr_assert_eq(events, k == 0 ? 0 : 10, "the events before the bad bytes are delivered");
        const char *msg = vsp_reader_error(r);
        cr_assert_not_null(strstr(msg, k == 0 ? "batch longer than its record at offset" :
                                                "undecodable event in a batch at offset"), "got: %s", msg);
        char off[64];
        snprintf(off, sizeof off, "offset %llu",
                 (unsigned long long)(k == 0 ? VSP_HEADER_SIZE + tb.pos
                                             : VSP_HEADER_SIZE + tb.pos + 32 + used));
        cr_assert_not_null(strstr(msg, off), "%s in: %s", off, msg);
        vsp_reader_close(r);
        ring_fixture_close(&f);
    }
}

/* Issue #13's measure: a 200,000-call storm of varied sizes on four threads, a 64 KiB ring,
 * nothing dropped: the whole file over its events. */
Test(batch, storm_recorded_by_the_shim_takes_at_most_32_bytes_an_event, .timeout = 120)
{
    char *dir = th_tmpdir();
    const char *argv[] = {VSP_PROGS "/prog_storm", "4", "25000", NULL};
    struct run_result plain, shim;
    const char *env[] = {"VRAMSPY_RING_SIZE=64K", NULL};
    th_run_pair(&plain, &shim, argv, dir, env);
    cr_assert_eq(shim.code, 0, "%s", shim.err);
    char path[4096];
    struct trace_summary s;
    th_one_trace(dir, &s, NULL, path);
    cr_assert(s.ok && s.complete, "%s", s.error);
    cr_assert_eq(s.events, 200000);
    cr_assert_eq(s.dropped, 0);
    cr_assert_eq(s.stack_refs_missing, 0, "every stack an event names comes before it");
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    double per = (double)sb.st_size / (double)s.events;
    cr_log_info("storm: %lld bytes for %llu events: %.1f bytes an event", (long long)sb.st_size,
                (unsigned long long)s.events, per);
    cr_assert_leq(per, 32.0, "%.1f bytes an event", per);
}
