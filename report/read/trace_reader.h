/* Streaming reader of vramspy trace files (format: include/vramspy/trace_format.h). Maps the file
 * read-only and hands out records in stream order: first the log, then what only the ring holds
 * (a process killed before it finalised). Validates everything it hands out; never trusts a
 * length or an offset from the file. Used by the analyzer, the dump tool and the tests. */
#ifndef VSP_TRACE_READER_H
#define VSP_TRACE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "vramspy/trace_format.h"

struct vsp_reader;

/* The deepest stack the shim writes (shim/common/config.h VSP_MAX_DEPTH; the trace format does not
 * carry it, and include/ is not the place for a shim limit): a STACK record with more frames is
 * corrupt. Version 4 stacks hold up to this many native frames and as many Python frames.
 * report/main.c checks that the two agree. */
#define VSP_READER_MAX_FRAMES 256u

struct vsp_record {
    uint64_t pos;          /* stream position */
    uint64_t file_offset;  /* where it sits in the file */
    uint16_t type;
    uint32_t payload_len;
    const void *payload;   /* valid until vsp_reader_close */
};

struct vsp_reader_stats {
    int complete;           /* finalised by the process and read without loss */
    int finalized;          /* header says the process finalised the trace */
    int log_failed;         /* the shim could not write its log (disk full) */
    int coarse_clock;       /* event times are at the kernel's tick (VSP_FLAG_COARSE_CLOCK) */
    uint64_t records;
    uint64_t torn;          /* records reserved but never committed (process died mid-call) */
    uint64_t skipped_bytes; /* unreadable bytes stepped over in the ring */
    uint64_t dropped;       /* events the shim dropped (header counter) */
    int truncated;          /* the file ends before the stream does */
};

/* Open `path`. On failure returns NULL and writes one line (no newline) into err:
 * what is wrong, with the byte offset where it applies. */
struct vsp_reader *vsp_reader_open(const char *path, char *err, size_t errlen);

/* 1: a record; 0: end of trace; -1: corrupt (message via vsp_reader_error, with the offset).
 * After -1 the records already returned are valid; the rest is not readable. */
int vsp_reader_next(struct vsp_reader *r, struct vsp_record *rec);

const char *vsp_reader_error(const struct vsp_reader *r);
const struct vsp_file_header *vsp_reader_header(const struct vsp_reader *r);
void vsp_reader_stats(const struct vsp_reader *r, struct vsp_reader_stats *out);
void vsp_reader_close(struct vsp_reader *r);
/* Tests: the number of waiting events at which the reorder window gives up on a missing number
 * (traces without SEQMARK records) or goes past a free in flight (traces with them); 1,048,576
 * unless set. */
void vsp_reader_set_window(struct vsp_reader *r, uint64_t events);

#endif
