/* The compact event coding of trace format 3: how one vsp_rec_event is written inside a
 * VSP_REC_BATCH record (trace_format.h), shared by the shim (encoder, on the hook path: no
 * allocation, no library call) and every reader (decoder: bounds-checked, never trusts a byte).
 *
 * Each event is delta-coded against the event before it in the same batch; `struct vsp_codec`
 * holds that previous event. An event is
 *
 *   byte 0   api (0..126) | 0x80 when an extension byte follows; api 127: the api follows as a varint
 *   byte 1   op (bits 0-2) | memory (bits 3-6) | 0x80 when the result is not 0
 *   varint   zigzag(seq - (previous seq + 1))
 *   varint   zigzag(time_ns - previous time_ns)
 *   varint   zigzag(ptr - previous ptr)
 *   varint   zigzag(size - previous size)
 *   varint   zigzag(stack_id - previous stack_id)
 *   [varint  zigzag(result)]                       when byte 1 has 0x80
 *   [byte    extension: which of the fields below follow]
 *   [varint  flags]           bit 0: flags differ from the previous event's (else: the same)
 *   [varint  zigzag(stream - previous stream)]      bit 1: stream differs
 *   [varint  zigzag(aux - previous aux)]            bit 2: aux differs
 *   [varint  free_bytes]      bit 3: known (else VSP_UNKNOWN_BYTES)
 *   [varint  total_bytes]     bit 4: known (else VSP_UNKNOWN_BYTES)
 *   [varint  eflags]          bit 5: eflags differ
 *   [varint  zigzag(device)]  bit 6: device differs
 *
 * Varints are LEB128 (7 bits a byte, low first, at most 10 bytes); zigzag maps a signed difference
 * to an unsigned one (0, -1, 1, -2 ... to 0, 1, 2, 3 ...). Differences are taken modulo 2^64. The
 * state a batch starts from: every field 0 except seq (-1, so the first seq is coded as itself),
 * time_ns (the header's start_monotonic_ns), free/total (unknown). tid comes from the batch. */
#ifndef VRAMSPY_EVENT_CODEC_H
#define VRAMSPY_EVENT_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vramspy/trace_format.h"

/* The longest coded event: two bytes, an api varint, six varints, the extension byte and seven
 * varints of at most 10 bytes. */
#define VSP_CODEC_MAX 150u

_Static_assert(VSP_MEM_COUNT_ <= 16, "memory kind must fit 4 bits of the coded event");

#define VSP_CODEC_API_ESCAPE 127u
#define VSP_CODEC_X_FLAGS 0x01u
#define VSP_CODEC_X_STREAM 0x02u
#define VSP_CODEC_X_AUX 0x04u
#define VSP_CODEC_X_FREE 0x08u
#define VSP_CODEC_X_TOTAL 0x10u
#define VSP_CODEC_X_EFLAGS 0x20u
#define VSP_CODEC_X_DEVICE 0x40u

/* The previous event of the batch: what the next one is coded against, and, after a decode,
 * the event just decoded. */
struct vsp_codec {
    struct vsp_rec_event last;
};

static inline void vsp_codec_reset(struct vsp_codec *c, uint64_t start_monotonic_ns)
{
    memset(c, 0, sizeof *c);
    c->last.seq = UINT64_MAX;
    c->last.time_ns = start_monotonic_ns;
}

static inline uint64_t vsp_zigzag(uint64_t diff)
{
    return (diff << 1) ^ (uint64_t)((int64_t)diff >> 63);
}

static inline uint64_t vsp_unzigzag(uint64_t z)
{
    return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
}

static inline unsigned char *vsp_put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* Codes `e` (its tid is not coded: the batch has it) after the event in `c` into `out`, which has
 * room for VSP_CODEC_MAX bytes; updates `c` to `e` (the fields coding uses: an encoder's c->last
 * is not a whole event). Returns the bytes written. */
static inline unsigned vsp_codec_encode(struct vsp_codec *c, const struct vsp_rec_event *e, unsigned char *out)
{
    unsigned char *p = out;
    unsigned x = 0;
    if (e->flags != c->last.flags)
        x |= VSP_CODEC_X_FLAGS;
    if (e->stream != c->last.stream)
        x |= VSP_CODEC_X_STREAM;
    if (e->aux != c->last.aux)
        x |= VSP_CODEC_X_AUX;
    if (e->free_bytes != VSP_UNKNOWN_BYTES)
        x |= VSP_CODEC_X_FREE;
    if (e->total_bytes != VSP_UNKNOWN_BYTES)
        x |= VSP_CODEC_X_TOTAL;
    if (e->eflags != c->last.eflags)
        x |= VSP_CODEC_X_EFLAGS;
    if (e->device != c->last.device)
        x |= VSP_CODEC_X_DEVICE;
    unsigned api = e->api < VSP_CODEC_API_ESCAPE ? e->api : VSP_CODEC_API_ESCAPE;
    *p++ = (unsigned char)(api | (x ? 0x80u : 0));
    if (api == VSP_CODEC_API_ESCAPE)
        p = vsp_put_varint(p, e->api);
    *p++ = (unsigned char)((e->op & 7u) | ((e->memory & 15u) << 3) | (e->result ? 0x80u : 0));
    p = vsp_put_varint(p, vsp_zigzag(e->seq - (c->last.seq + 1)));
    p = vsp_put_varint(p, vsp_zigzag(e->time_ns - c->last.time_ns));
    p = vsp_put_varint(p, vsp_zigzag(e->ptr - c->last.ptr));
    p = vsp_put_varint(p, vsp_zigzag(e->size - c->last.size));
    p = vsp_put_varint(p, vsp_zigzag((uint64_t)e->stack_id - c->last.stack_id));
    if (e->result)
        p = vsp_put_varint(p, vsp_zigzag((uint64_t)(int64_t)e->result));
    if (x) {
        *p++ = (unsigned char)x;
        if (x & VSP_CODEC_X_FLAGS)
            p = vsp_put_varint(p, e->flags);
        if (x & VSP_CODEC_X_STREAM)
            p = vsp_put_varint(p, vsp_zigzag(e->stream - c->last.stream));
        if (x & VSP_CODEC_X_AUX)
            p = vsp_put_varint(p, vsp_zigzag(e->aux - c->last.aux));
        if (x & VSP_CODEC_X_FREE)
            p = vsp_put_varint(p, e->free_bytes);
        if (x & VSP_CODEC_X_TOTAL)
            p = vsp_put_varint(p, e->total_bytes);
        if (x & VSP_CODEC_X_EFLAGS)
            p = vsp_put_varint(p, e->eflags);
        if (x & VSP_CODEC_X_DEVICE)
            p = vsp_put_varint(p, vsp_zigzag((uint64_t)(int64_t)e->device));
    }
    /* Field by field, not `c->last = *e`: the caller has just written *e field by field, and the
     * 16-byte loads of a struct copy cannot be forwarded from those narrower stores (each one
     * waits for them to reach the cache: issue 22, a quarter of the coder's time). Each value
     * passes through a register (the empty asm), so the compiler does not merge the copies back
     * into 16-byte ones. Only what the next event is coded against is kept. */
#define VSP_CODEC_KEEP(f)                    \
    do {                                     \
        __typeof__(c->last.f) vsp_v_ = e->f; \
        __asm__("" : "+r"(vsp_v_));          \
        c->last.f = vsp_v_;                  \
    } while (0)
    VSP_CODEC_KEEP(seq);
    VSP_CODEC_KEEP(time_ns);
    VSP_CODEC_KEEP(ptr);
    VSP_CODEC_KEEP(size);
    VSP_CODEC_KEEP(stack_id);
    VSP_CODEC_KEEP(flags);
    VSP_CODEC_KEEP(stream);
    VSP_CODEC_KEEP(aux);
    VSP_CODEC_KEEP(eflags);
    VSP_CODEC_KEEP(device);
#undef VSP_CODEC_KEEP
    return (unsigned)(p - out);
}

/* Reads a varint from [*p, end); 0 on success, -1 when it runs past end or past 10 bytes. */
static inline __attribute__((always_inline)) int vsp_get_varint(const unsigned char **p, const unsigned char *end,
                                                                uint64_t *v)
{
    const unsigned char *q = *p;
    if (q < end && q[0] < 0x80) { /* the common case: one byte */
        *v = q[0];
        *p = q + 1;
        return 0;
    }
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (q >= end)
            return -1;
        unsigned b = *q++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            *p = q;
            return 0;
        }
    }
    return -1;
}

/* Decodes the event at [p, end) after the one in `c` into c->last (tid set to `tid`). Returns the
 * bytes read, or -1 when the bytes are not a whole event (c->last then unchanged). */
static inline __attribute__((always_inline)) int vsp_codec_decode(struct vsp_codec *c, const unsigned char *p,
                                                                 const unsigned char *end, uint32_t tid)
{
    const unsigned char *start = p;
    uint64_t v[5], api, x = 0, r = 0;
    if (end - p < 2)
        return -1;
    unsigned b0 = *p++;
    api = b0 & 0x7fu;
    if (api == VSP_CODEC_API_ESCAPE && (vsp_get_varint(&p, end, &api) < 0 || api > 0xffff))
        return -1;
    if (p >= end)
        return -1;
    unsigned b1 = *p++;
    for (int i = 0; i < 5; i++)
        if (vsp_get_varint(&p, end, &v[i]) < 0)
            return -1;
    if ((b1 & 0x80u) && vsp_get_varint(&p, end, &r) < 0)
        return -1;
    /* flags, stream, aux, eflags and device stay the previous event's unless the extension says */
    struct vsp_rec_event d = c->last, *e = &d;
    e->seq = c->last.seq + 1 + vsp_unzigzag(v[0]);
    e->time_ns = c->last.time_ns + vsp_unzigzag(v[1]);
    e->ptr = c->last.ptr + vsp_unzigzag(v[2]);
    e->size = c->last.size + vsp_unzigzag(v[3]);
    e->stack_id = (uint32_t)(c->last.stack_id + vsp_unzigzag(v[4]));
    e->result = (int32_t)vsp_unzigzag(r);
    e->api = (uint16_t)api;
    e->op = (uint8_t)(b1 & 7u);
    e->memory = (uint8_t)((b1 >> 3) & 15u);
    e->tid = tid;
    e->free_bytes = e->total_bytes = VSP_UNKNOWN_BYTES;
    if (b0 & 0x80u) {
        if (p >= end)
            return -1;
        x = *p++;
        if (x & 0x80u)
            return -1; /* no such field */
        uint64_t t;
        if ((x & VSP_CODEC_X_FLAGS) && vsp_get_varint(&p, end, &e->flags) < 0)
            return -1;
        if (x & VSP_CODEC_X_STREAM) {
            if (vsp_get_varint(&p, end, &t) < 0)
                return -1;
            e->stream = c->last.stream + vsp_unzigzag(t);
        }
        if (x & VSP_CODEC_X_AUX) {
            if (vsp_get_varint(&p, end, &t) < 0)
                return -1;
            e->aux = c->last.aux + vsp_unzigzag(t);
        }
        if ((x & VSP_CODEC_X_FREE) && vsp_get_varint(&p, end, &e->free_bytes) < 0)
            return -1;
        if ((x & VSP_CODEC_X_TOTAL) && vsp_get_varint(&p, end, &e->total_bytes) < 0)
            return -1;
        if (x & VSP_CODEC_X_EFLAGS) {
            if (vsp_get_varint(&p, end, &t) < 0 || t > UINT32_MAX)
                return -1;
            e->eflags = (uint32_t)t;
        }
        if (x & VSP_CODEC_X_DEVICE) {
            if (vsp_get_varint(&p, end, &t) < 0)
                return -1;
            e->device = (int32_t)vsp_unzigzag(t);
        }
    }
    c->last = d;
    return (int)(p - start);
}

#endif
