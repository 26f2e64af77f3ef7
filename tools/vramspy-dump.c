/* vramspy-dump: print a trace's records as JSON lines, one per record, then a summary line.
 * A debugging and testing aid for the raw format (the analyzer is vramspy-report).
 * Usage: vramspy-dump TRACE. Exit 0, or 2 with one line on stderr for a bad file. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "report/read/trace_reader.h"

static void put_str(const char *s, size_t max)
{
    putchar('"');
    for (size_t i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("vramspy-dump 0.1.0 (trace format %u)\n", VSP_TRACE_VERSION);
        return 0;
    }
    if (argc != 2 || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: vramspy-dump TRACE\n");
        return argc == 2 ? 0 : 2;
    }
    char err[600];
    struct vsp_reader *r = vsp_reader_open(argv[1], err, sizeof err);
    if (!r) {
        fprintf(stderr, "vramspy-dump: %s\n", err);
        return 2;
    }
    struct vsp_record rec;
    int rc;
    while ((rc = vsp_reader_next(r, &rec)) > 0) {
        printf("{\"pos\":%" PRIu64 ",", rec.pos);
        switch (rec.type) {
        case VSP_REC_PROCESS: {
            const struct vsp_rec_process *p = rec.payload;
            const char *exe = (const char *)(p + 1);
            printf("\"type\":\"process\",\"pid\":%u,\"ppid\":%u,\"depth\":%u,\"exe\":", p->pid, p->ppid, p->depth);
            put_str(exe, p->exe_len);
            printf(",\"argv\":[");
            const char *a = exe + p->exe_len, *end = a + p->argv_len;
            for (int first = 1; a < end; a += strnlen(a, (size_t)(end - a)) + 1, first = 0) {
                if (!first)
                    putchar(',');
                put_str(a, (size_t)(end - a));
            }
            printf("]}\n");
            break;
        }
        case VSP_REC_MODULE: {
            const struct vsp_rec_module *m = rec.payload;
            const unsigned char *bid = (const unsigned char *)(m + 1);
            printf("\"type\":\"module\",\"base\":\"0x%" PRIx64 "\",\"start\":\"0x%" PRIx64 "\",\"end\":\"0x%" PRIx64
                   "\",\"build_id\":\"", m->base, m->start, m->end);
            for (unsigned i = 0; i < m->build_id_len; i++)
                printf("%02x", bid[i]);
            printf("\",\"path\":");
            put_str((const char *)bid + m->build_id_len, m->path_len);
            printf("}\n");
            break;
        }
        case VSP_REC_STACK: {
            const struct vsp_rec_stack *s = rec.payload;
            const uint64_t *f = (const uint64_t *)(s + 1);
            printf("\"type\":\"stack\",\"id\":%u,\"frames\":[", s->id);
            unsigned i = 0;
            for (; i < s->nframes && !VSP_PYFRAME_IS(f[i]); i++)
                printf("%s\"0x%" PRIx64 "\"", i ? "," : "", f[i]);
            printf("]");
            if (i < s->nframes) { /* version 4: the Python frames, innermost first */
                printf(",\"python\":[");
                for (unsigned k = i; k < s->nframes; k++)
                    printf("%s{\"code\":%u,\"line\":%u,\"entry\":%s}", k > i ? "," : "", VSP_PYFRAME_CODE(f[k]),
                           VSP_PYFRAME_LINE(f[k]), VSP_PYFRAME_IS_ENTRY(f[k]) ? "true" : "false");
                printf("]");
            }
            printf("}\n");
            break;
        }
        case VSP_REC_PYCODE: {
            const struct vsp_rec_pycode *c = rec.payload; /* lengths checked by the reader */
            printf("\"type\":\"pycode\",\"id\":%u,\"firstline\":%u,\"name\":", c->id, c->firstline);
            put_str((const char *)(c + 1), c->name_len - 1);
            printf(",\"file\":");
            put_str((const char *)(c + 1) + c->name_len, c->file_len - 1);
            printf("}\n");
            break;
        }
        case VSP_REC_EVENT: {
            const struct vsp_rec_event *e = rec.payload;
            printf("\"type\":\"event\",\"api\":\"%s\",\"op\":%u,\"memory\":\"%s\",\"ptr\":\"0x%" PRIx64
                   "\",\"size\":%" PRIu64 ",\"flags\":%" PRIu64 ",\"stream\":\"0x%" PRIx64 "\",\"aux\":%" PRIu64
                   ",\"result\":%d,\"device\":%d,\"tid\":%u,\"time_ns\":%" PRIu64 ",\"stack\":%u",
                   vsp_api_name(e->api), e->op, vsp_memory_name(e->memory), e->ptr, e->size, e->flags, e->stream,
                   e->aux, e->result, e->device, e->tid, e->time_ns, e->stack_id);
            if (e->free_bytes != VSP_UNKNOWN_BYTES)
                printf(",\"free_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64, e->free_bytes, e->total_bytes);
            if (rec.payload_len >= sizeof *e)
                printf(",\"seq\":%" PRIu64, e->seq);
            printf("}\n");
            break;
        }
        case VSP_REC_END: {
            const struct vsp_rec_end *e = rec.payload;
            printf("\"type\":\"end\",\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"failed\":%" PRIu64
                   ",\"host_allocations\":%" PRIu64 ",\"live_allocations\":%" PRIu64 ",\"live_bytes\":%" PRIu64
                   ",\"peak_device_bytes\":%" PRIu64 ",\"dropped\":%" PRIu64,
                   e->allocations, e->frees, e->failed, e->host_allocations, e->live_allocations, e->live_bytes,
                   e->peak_device_bytes, e->dropped);
            if (rec.payload_len >= sizeof *e)
                printf(",\"abandoned\":%" PRIu64, e->abandoned);
            printf("}\n");
            break;
        }
        case VSP_REC_SEQMARK: {
            const struct vsp_rec_seqmark *m = rec.payload; /* the reader checked the list's length */
            printf("\"type\":\"seqmark\",\"next_seq\":%" PRIu64 ",\"partial\":%s,\"inflight\":[", m->next_seq,
                   (m->flags & VSP_SEQMARK_PARTIAL) ? "true" : "false");
            const struct vsp_seqmark_free *l = (const void *)(m + 1);
            for (uint32_t i = 0; i < m->n_inflight; i++)
                printf("%s{\"seq\":%" PRIu64 ",\"ptr\":\"0x%" PRIx64 "\"}", i ? "," : "", l[i].seq, l[i].ptr);
            printf("]}\n");
            break;
        }
        case VSP_REC_NOTE:
            printf("\"type\":\"note\",\"text\":");
            put_str(rec.payload, rec.payload_len);
            printf("}\n");
            break;
        case VSP_REC_LABEL: {
            const struct vsp_rec_label *l = rec.payload;
            if (rec.payload_len < sizeof *l || l->name_len > rec.payload_len - sizeof *l) {
                printf("\"type\":\"label\"}\n");
                break;
            }
            printf("\"type\":\"label\",\"id\":%u,\"name\":", l->id);
            put_str((const char *)(l + 1), l->name_len ? l->name_len - 1 : 0);
            printf("}\n");
            break;
        }
        case VSP_REC_USAGE: {
            const struct vsp_rec_usage *u = rec.payload;
            if (rec.payload_len < sizeof *u) {
                printf("\"type\":\"usage\"}\n");
                break;
            }
            printf("\"type\":\"usage\",\"source\":\"%s\",\"reason\":%u,\"used_bytes\":%" PRIu64
                   ",\"traced_bytes\":%" PRIu64 ",\"time_ns\":%" PRIu64 "}\n",
                   u->source == VSP_USAGE_NVML ? "nvml" : "device", u->reason, u->used_bytes, u->traced_bytes, u->time_ns);
            break;
        }
        case VSP_REC_POOL: {
            const struct vsp_rec_pool *p = rec.payload;
            if (rec.payload_len < sizeof *p) {
                printf("\"type\":\"pool\"}\n");
                break;
            }
            printf("\"type\":\"pool\",\"pool\":\"0x%" PRIx64 "\",\"host\":%u,\"reserved_bytes\":%" PRIu64
                   ",\"used_bytes\":%" PRIu64 ",\"used_high_bytes\":%" PRIu64 "}\n",
                   p->pool, p->host, p->reserved_current, p->used_current, p->used_high);
            break;
        }
        case VSP_REC_HOST: {
            const struct vsp_rec_host *h = rec.payload;
            if (rec.payload_len < sizeof *h || h->host_len > rec.payload_len - sizeof *h) {
                printf("\"type\":\"host\"}\n");
                break;
            }
            printf("\"type\":\"host\",\"rank\":%d,\"local_rank\":%d,\"world_size\":%d,\"host\":", h->rank,
                   h->local_rank, h->world_size);
            put_str((const char *)(h + 1), h->host_len ? h->host_len - 1 : 0);
            printf("}\n");
            break;
        }
        default:
            printf("\"type\":\"unknown\",\"code\":%u}\n", rec.type);
        }
    }
    struct vsp_reader_stats st;
    vsp_reader_stats(r, &st);
    printf("{\"type\":\"summary\",\"complete\":%s,\"records\":%" PRIu64 ",\"torn\":%" PRIu64
           ",\"skipped_bytes\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"truncated\":%s}\n",
           st.complete ? "true" : "false", st.records, st.torn, st.skipped_bytes, st.dropped,
           st.truncated ? "true" : "false");
    if (rc < 0) {
        fprintf(stderr, "vramspy-dump: %s: %s\n", argv[1], vsp_reader_error(r));
        vsp_reader_close(r);
        return 2;
    }
    vsp_reader_close(r);
    return 0;
}
