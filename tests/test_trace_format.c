/* The trace format's layout (include/vramspy/trace_format.h) and the reader's handling of bad
 * input: newer versions, foreign files, truncation and corrupted bytes give one clear message
 * with an offset, never a crash. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "ring_fixture.h"
#include "report/read/trace_reader.h"

/* bytes of one event record in the stream: header + payload */
#define EVREC (sizeof(struct vsp_rec_hdr) + sizeof(struct vsp_rec_event))

Test(trace_format, layout_is_pinned)
{
    cr_assert_eq(sizeof(struct vsp_file_header), 4096);
    cr_assert_eq(offsetof(struct vsp_file_header, version), 8);
    cr_assert_eq(offsetof(struct vsp_file_header, ring_size), 24);
    cr_assert_eq(offsetof(struct vsp_file_header, head), 128);
    cr_assert_eq(offsetof(struct vsp_file_header, tail), 192);
    cr_assert_eq(offsetof(struct vsp_file_header, dropped), 256);
    cr_assert_eq(sizeof(struct vsp_rec_hdr), 16);
    cr_assert_eq(sizeof(struct vsp_rec_event), 96);
    cr_assert_eq(offsetof(struct vsp_rec_event, seq), 88);
    cr_assert_eq(offsetof(struct vsp_rec_event, ptr), 8);
    cr_assert_eq(offsetof(struct vsp_rec_event, result), 72);
    cr_assert_eq(offsetof(struct vsp_rec_event, memory), 83);
    cr_assert_str_eq(vsp_api_name(VSP_API_cudaMalloc), "cudaMalloc");
    cr_assert_str_eq(vsp_api_name(VSP_API_cuMemAlloc_v2), "cuMemAlloc_v2");
    cr_assert_str_eq(vsp_api_name(999), "unknown");
    /* the names are rows of a character array: each must keep its NUL inside its row */
    for (unsigned api = 0; api < VSP_API_COUNT_; api++)
        cr_assert_not_null(memchr(vsp_api_name(api), 0, 32), "API %u's name is terminated", api);
    for (unsigned m = 0; m < VSP_MEM_COUNT_; m++)
        cr_assert_not_null(memchr(vsp_memory_name(m), 0, 16), "memory kind %u's name is terminated", m);
    cr_assert_str_eq(vsp_memory_name(VSP_MEM_HOST_REGISTERED), "host_registered");
}

static struct vsp_reader *open_fixture_after(void (*mutate)(struct ring_fixture *), char *err, size_t len)
{
    static struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    for (int i = 0; i < 3000; i++)
        ring_fixture_event(&f, (uint64_t)i + 1, 1);
    vsp_ring_flush(&f.ring, 1);
    mutate(&f);
    struct vsp_reader *r = vsp_reader_open(f.path, err, len);
    unlink(f.path); /* the reader keeps it open; nothing is left in /tmp */
    return r;
}

static void newer(struct ring_fixture *f) { ((struct vsp_file_header *)f->map)->version = VSP_TRACE_VERSION + 1; }
static void foreign(struct ring_fixture *f) { memcpy(f->map, "ELF\x7f....", 8); }
static void corrupt_log(struct ring_fixture *f)
{
    unsigned char b = 0xff;
    pwrite(f->fd, &b, 1, (off_t)(VSP_HEADER_SIZE + 64 * 1024 + EVREC * 100 + 3));
}
static void truncate_log(struct ring_fixture *f)
{
    if (ftruncate(f->fd, (off_t)(VSP_HEADER_SIZE + 64 * 1024 + EVREC * 1000 + 50)) < 0)
        cr_assert_fail("ftruncate");
}

Test(trace_format, newer_version_is_rejected_with_clear_message)
{
    char err[600];
    cr_assert_null(open_fixture_after(newer, err, sizeof err));
    char want[64];
    snprintf(want, sizeof want, "version %u is newer", VSP_TRACE_VERSION + 1);
    cr_assert_not_null(strstr(err, want), "got: %s", err);
}

Test(trace_format, foreign_file_is_not_a_trace)
{
    char err[600];
    cr_assert_null(open_fixture_after(foreign, err, sizeof err));
    cr_assert_not_null(strstr(err, "not a vramspy trace"), "got: %s", err);
}

Test(trace_format, corrupted_byte_gives_offset_after_valid_prefix)
{
    char err[600];
    struct vsp_reader *r = open_fixture_after(corrupt_log, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    struct vsp_record rec;
    int rc, n = 0;
    while ((rc = vsp_reader_next(r, &rec)) > 0)
        n++;
    cr_assert_eq(rc, -1);
    cr_assert_eq(n, 100, "the records before the damage are handed out");
    cr_assert_not_null(strstr(vsp_reader_error(r), "offset"), "got: %s", vsp_reader_error(r));
    vsp_reader_close(r);
}

Test(trace_format, truncated_trace_reads_what_is_there)
{
    char err[600];
    struct vsp_reader *r = open_fixture_after(truncate_log, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    struct vsp_record rec;
    int rc, n = 0;
    while ((rc = vsp_reader_next(r, &rec)) > 0)
        n++;
    cr_assert_eq(rc, 0);
    cr_assert_eq(n, 1000);
    struct vsp_reader_stats st;
    vsp_reader_stats(r, &st);
    cr_assert_eq(st.truncated, 1);
    cr_assert_eq(st.complete, 0);
    vsp_reader_close(r);
}

Test(trace_format, missing_and_tiny_files)
{
    char err[600];
    cr_assert_null(vsp_reader_open("/nonexistent/x.trace", err, sizeof err));
    cr_assert_not_null(strstr(err, "cannot open"));
    cr_assert_null(vsp_reader_open("/etc/hostname", err, sizeof err));
    cr_assert_not_null(strstr(err, "not a vramspy trace"), "got: %s", err);
    cr_assert_null(vsp_reader_open("/tmp", err, sizeof err));
}

/* Write events whose seq (and ptr tag) follow `seqs`, in that file order, then an END record. */
static struct vsp_reader *open_events_in_file_order(const uint64_t *seqs, int n, uint32_t version)
{
    static struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    ((struct vsp_file_header *)f.map)->version = version;
    for (int i = 0; i < n; i++) {
        struct vsp_resv res;
        cr_assert_eq(vsp_ring_reserve(&f.ring, VSP_REC_EVENT, sizeof(struct vsp_rec_event), &res), 0);
        struct vsp_rec_event *e = res.payload;
        memset(e, 0, sizeof *e);
        e->ptr = seqs[i];
        e->seq = seqs[i];
        e->op = VSP_OP_ALLOC;
        vsp_ring_commit(&f.ring, &res);
    }
    struct vsp_resv res;
    cr_assert_eq(vsp_ring_reserve(&f.ring, VSP_REC_END, sizeof(struct vsp_rec_end), &res), 0);
    memset(res.payload, 0, sizeof(struct vsp_rec_end));
    vsp_ring_commit(&f.ring, &res);
    vsp_ring_flush(&f.ring, 1);
    char err[600];
    struct vsp_reader *r = vsp_reader_open(f.path, err, sizeof err);
    unlink(f.path); /* the reader keeps it open */
    cr_assert_not_null(r, "%s", err);
    return r;
}

Test(trace_format, late_free_record_is_delivered_in_sequence_order)
{
    /* a free that took seq 2 before its real call, written after events 3..2001 */
    static uint64_t seqs[2003];
    int n = 0;
    seqs[n++] = 0;
    seqs[n++] = 1;
    for (uint64_t s = 3; s <= 2001; s++)
        seqs[n++] = s;
    seqs[n++] = 2;
    struct vsp_reader *r = open_events_in_file_order(seqs, n, VSP_TRACE_VERSION);
    struct vsp_record rec;
    uint64_t want = 0;
    int end_seen = 0;
    while (vsp_reader_next(r, &rec) > 0) {
        if (rec.type == VSP_REC_END) {
            cr_assert_eq(want, 2002, "END comes after every event");
            end_seen = 1;
            continue;
        }
        cr_assert_eq(rec.type, VSP_REC_EVENT);
        const struct vsp_rec_event *e = rec.payload;
        cr_assert_eq(e->seq, want, "event %llu delivered where %llu belongs", (unsigned long long)e->seq,
                     (unsigned long long)want);
        cr_assert_eq(e->ptr, want, "the payload is the record's own");
        want++;
    }
    cr_assert(end_seen);
    vsp_reader_close(r);
}

Test(trace_format, version_1_trace_is_read_in_file_order)
{
    uint64_t seqs[] = {5, 3, 9};
    struct vsp_reader *r = open_events_in_file_order(seqs, 3, 1);
    struct vsp_record rec;
    int i = 0;
    while (vsp_reader_next(r, &rec) > 0)
        if (rec.type == VSP_REC_EVENT)
            cr_assert_eq(((const struct vsp_rec_event *)rec.payload)->ptr, seqs[i++]);
    cr_assert_eq(i, 3);
    vsp_reader_close(r);
}

/* A trace with SEQMARK records (issue #20, item 6), its records in `spec` order: "E<seq>[@<ptr>]"
 * an event (ptr defaults to seq), "M" a mark (next_seq 4; in flight: `inflight`, a free of
 * address 0x100, or none when negative), "N" a NOTE. The reader's window is `window` events.
 * Returns the delivery order, events as "<seq>", marks "M", notes "N". */
static void marked_order(const char *spec, int64_t inflight, uint64_t window, char *out, size_t len)
{
    static struct ring_fixture f;
    cr_assert_eq(ring_fixture_open(&f, 64 * 1024, VSP_ON_FULL_WAIT), 0);
    ((struct vsp_file_header *)f.map)->flags |= VSP_FLAG_SEQMARKS;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        if (tok[0] == 'M') {
            struct vsp_rec_seqmark m = {.next_seq = 4, .n_inflight = inflight >= 0};
            struct vsp_seqmark_free fr = {(uint64_t)inflight, 0x100};
            cr_assert_eq(ring_fixture_write(&f, VSP_REC_SEQMARK, &m, sizeof m, &fr, inflight >= 0 ? sizeof fr : 0,
                                            NULL, 0), 0);
        } else if (tok[0] == 'N') {
            cr_assert_eq(ring_fixture_write(&f, VSP_REC_NOTE, "note", 5, NULL, 0, NULL, 0), 0);
        } else {
            char *at = strchr(tok, '@');
            uint64_t seq = strtoull(tok + 1, NULL, 10);
            struct vsp_rec_event e = {.ptr = at ? strtoull(at + 1, NULL, 16) : seq, .seq = seq,
                                      .time_ns = 1000 + seq, .op = VSP_OP_ALLOC};
            cr_assert_eq(ring_fixture_write(&f, VSP_REC_EVENT, &e, sizeof e, NULL, 0, NULL, 0), 0);
        }
    }
    vsp_ring_flush(&f.ring, 1);
    char err[600];
    struct vsp_reader *r = vsp_reader_open(f.path, err, sizeof err);
    unlink(f.path);
    cr_assert_not_null(r, "%s", err);
    vsp_reader_set_window(r, window);
    struct vsp_record rec;
    size_t k = 0;
    out[0] = 0;
    while (vsp_reader_next(r, &rec) > 0 && k + 4 < len) {
        if (rec.type == VSP_REC_EVENT)
            k += (size_t)snprintf(out + k, len - k, "%llu ",
                                  (unsigned long long)((const struct vsp_rec_event *)rec.payload)->seq);
        else if (rec.type == VSP_REC_SEQMARK)
            k += (size_t)snprintf(out + k, len - k, "M ");
        else if (rec.type == VSP_REC_NOTE)
            k += (size_t)snprintf(out + k, len - k, "N ");
    }
    vsp_reader_close(r);
    ring_fixture_close(&f);
}

Test(trace_format, a_seqmark_settles_a_lost_number_at_once)
{
    char order[64];
    /* 1 was never written (dropped), and no free was in flight */
    marked_order("E0 M E2 N", -1, 1u << 20, order, sizeof order);
    cr_assert_str_eq(order, "0 M 2 N ", "event 2 is handed out when the mark is read, not at the end");
}

Test(trace_format, a_free_in_flight_at_a_seqmark_is_waited_for)
{
    char order[64];
    /* 1: a free whose call had not returned */
    marked_order("E0 M E2 N E1@100", 1, 1u << 20, order, sizeof order);
    cr_assert_str_eq(order, "0 M N 1 2 ", "event 2 waits for the free in flight");
}

Test(trace_format, past_the_window_only_events_on_a_free_in_flights_address_wait_for_it)
{
    char order[64];
    /* 1: a free of 0x100 in flight; 2 and 3 unrelated, 3 the reuse of 0x100 by another thread;
     * with a window of one waiting event the reader goes past 1, holding back only 3 */
    marked_order("E0 M E2 E3@100 N E1@100", 1, 1, order, sizeof order);
    cr_assert_str_eq(order, "0 M 2 N 1 3 ", "the free comes before the reuse of its address: %s", order);
    /* a free that never comes (its thread killed): what waited for it comes out at the end */
    marked_order("E0 M E2 E3@100 N", 1, 1, order, sizeof order);
    cr_assert_str_eq(order, "0 M 2 N 3 ", "%s", order);
}
