/* vramspy trace format: the one definition shared by the shim (writer) and every reader.
 *
 * A trace file is laid out as
 *
 *   [ file header, VSP_HEADER_SIZE bytes ][ ring, ring_size bytes ][ log ... ]
 *
 * and holds one byte *stream* of records. Every record has an absolute stream position P (a
 * multiple of 8, starting at 0). The log is a byte-exact copy of the stream prefix [0, tail): the
 * record at P < tail lives at file offset log_offset + P. Records at P >= tail still live only in
 * the ring, at ring_offset + (P % ring_size). The ring is a MAP_SHARED mapping of the file, so what
 * a writer committed is in the file even if the process is killed with SIGKILL.
 *
 * Every record starts with a 16-byte vsp_rec_hdr whose `seq` word names its own position P plus
 * state bits. A reader trusts a record only if seq == P | VALID | COMMITTED; stale bytes from a
 * previous lap of the ring carry another position and are recognised as "not written yet".
 *
 * All fields are little-endian and fixed-width; sizes and offsets are pinned by _Static_asserts
 * below and by tests/test_trace_format.c. Never reorder or resize a field: add new record types or
 * append fields (readers accept records longer than they know) and bump VSP_TRACE_VERSION only for
 * changes an old reader cannot skip. Documented in docs/trace-format.md.
 */
#ifndef VRAMSPY_TRACE_FORMAT_H
#define VRAMSPY_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the vramspy trace format is little-endian; a big-endian port needs byte swapping"
#endif

#define VSP_TRACE_MAGIC "VRAMSPY\x01"
#define VSP_TRACE_MAGIC_LEN 8
/* 4: a STACK record may end with Python frames (VSP_PYFRAME_BIT words after the native return
 * addresses) whose code objects PYCODE records name. 3: the shim writes events compactly, many to a record (VSP_REC_BATCH, one thread's events,
 * coded as in vramspy/event_codec.h); EVENT records stay readable. 2: events carry a sequence
 * number (vsp_rec_event.seq) and readers deliver them in its order; a free's record is written
 * after the real free returns. 1: file order was event order. */
#define VSP_TRACE_VERSION 4u
#define VSP_HEADER_SIZE 4096u

/* seq word state bits (positions are multiples of 8, so the low 3 bits are free). */
#define VSP_SEQ_COMMITTED 0x1ull /* the record is complete */
#define VSP_SEQ_PAD 0x2ull       /* 8-byte pad word: skip to the next multiple of ring_size */
#define VSP_SEQ_VALID 0x4ull     /* set on every written seq word; zeroed file bytes lack it */
#define VSP_SEQ_POS_MASK (~0x7ull)

/* header.flags */
#define VSP_FLAG_COMPLETE 0x1u   /* the process finalised the trace (exit or return from main) */
#define VSP_FLAG_LOG_FAILED 0x2u /* writing the log failed (disk full); later events were dropped */
/* Set at creation by a writer that writes SEQMARK records (a compatible addition: older readers
 * skip the records and ignore the flag): a reader settles missing event numbers by the marks, not
 * by a window's size. */
#define VSP_FLAG_SEQMARKS 0x4u
/* Set at creation when event times come from the kernel's coarse clock (VRAMSPY_CLOCK=coarse):
 * CLOCK_MONOTONIC at the last tick, 1 to 10 ms apart, and start_monotonic_ns is one such reading. */
#define VSP_FLAG_COARSE_CLOCK 0x8u

/* File header. The cursors live in the shared mapping and are updated atomically by the shim,
 * each on its own cache line: head is contended by every writer, tail by the flusher only. */
struct vsp_file_header {
    char magic[8];            /* VSP_TRACE_MAGIC */
    uint32_t version;         /* VSP_TRACE_VERSION */
    uint32_t header_size;     /* VSP_HEADER_SIZE */
    uint64_t ring_offset;     /* == header_size */
    uint64_t ring_size;       /* power of two */
    uint64_t log_offset;      /* == ring_offset + ring_size */
    uint32_t flags;           /* VSP_FLAG_* (atomic) */
    uint32_t pid;
    uint64_t start_realtime_ns;  /* CLOCK_REALTIME at trace creation */
    uint64_t start_monotonic_ns; /* CLOCK_MONOTONIC at trace creation (event times use it) */
    uint64_t end_monotonic_ns;   /* set when finalised */
    uint8_t pad0[128 - 72];
    uint64_t head;            /* offset 128: bytes reserved in the stream (atomic) */
    uint8_t pad1[56];
    uint64_t tail;            /* offset 192: stream bytes copied into the log (atomic) */
    uint8_t pad2[56];
    uint64_t dropped;         /* offset 256: events dropped (ring full in drop mode, log failure) */
    uint8_t pad3[56];
    uint64_t next_seq;        /* offset 320 (version 2): the next event sequence number (atomic) */
    uint8_t pad4[VSP_HEADER_SIZE - 328];
};

struct vsp_rec_hdr {
    uint64_t seq;   /* P | VSP_SEQ_* bits */
    uint32_t len;   /* whole record, header included, multiple of 8 */
    uint16_t type;  /* VSP_REC_* */
    uint16_t rflags;
};

enum vsp_rec_type {
    VSP_REC_PROCESS = 1, /* vsp_rec_process + exe path + NUL + argv strings (each NUL-terminated) */
    VSP_REC_MODULE = 2,  /* vsp_rec_module + build-id bytes + path + NUL */
    VSP_REC_STACK = 3,   /* vsp_rec_stack + nframes uint64 return addresses, innermost first */
    VSP_REC_EVENT = 4,   /* vsp_rec_event */
    VSP_REC_END = 5,     /* vsp_rec_end: clean finalisation with the shim's own counters */
    VSP_REC_NOTE = 6,    /* free text (NUL-terminated): a warning the shim wants kept */
    VSP_REC_LABEL = 7,   /* vsp_rec_label + name + NUL: a purpose label's id (events carry ids) */
    VSP_REC_USAGE = 8,   /* vsp_rec_usage: the process's device memory as seen from outside the hooks */
    VSP_REC_POOL = 9,    /* vsp_rec_pool: a stream-ordered memory pool's reserved and used bytes */
    VSP_REC_HOST = 10,   /* vsp_rec_host + host name + NUL: where the process ran, its rank in a job */
    VSP_REC_BATCH = 11,  /* version 3: vsp_rec_batch + coded events of one thread (event_codec.h) */
    VSP_REC_PYCODE = 12, /* version 4: vsp_rec_pycode + name + NUL + file + NUL: a Python code object */
    VSP_REC_SEQMARK = 13, /* vsp_rec_seqmark + u64 seqs: which event numbers are settled */
};

struct vsp_rec_process {
    uint32_t pid;
    uint32_t ppid;
    uint32_t exe_len;   /* bytes of exe path, NUL included */
    uint32_t argc;
    uint32_t argv_len;  /* bytes of argv strings, NULs included */
    uint32_t depth;     /* VRAMSPY_DEPTH in force */
    uint64_t start_realtime_ns;
    char shim_version[16];
};

struct vsp_rec_module {
    uint64_t base;      /* load bias (dlpi_addr): address = base + ELF vaddr */
    uint64_t start;     /* lowest mapped address of its PT_LOAD segments */
    uint64_t end;       /* one past the highest */
    uint32_t path_len;  /* NUL included */
    uint16_t build_id_len;
    uint16_t reserved;
};

struct vsp_rec_stack {
    uint32_t id;        /* > 0; events refer to it */
    uint32_t nframes;
};

/* Version 4: a STACK record's frames are its native return addresses (innermost first), then,
 * when the thread was running Python with the GIL, its Python frames (innermost first), each a
 * word with VSP_PYFRAME_BIT set (no return address has bit 63 set: user space ends below 2^57):
 *   bit 63: a Python frame; bit 62: an entry frame (the outermost Python frame one C call of the
 *   interpreter's eval loop ran: the frames up to and including it belong to one eval-loop C
 *   frame of the native part); bits 32..61: PYCODE id; bits 0..31: line (0 unknown). */
#define VSP_PYFRAME_BIT (1ull << 63)
#define VSP_PYFRAME_ENTRY (1ull << 62)
#define VSP_PYFRAME_CODE_MAX 0x3fffffffu
#define VSP_PYFRAME(code, line, entry) \
    (VSP_PYFRAME_BIT | ((entry) ? VSP_PYFRAME_ENTRY : 0) | ((uint64_t)((code) & VSP_PYFRAME_CODE_MAX) << 32) | \
     (uint64_t)(uint32_t)(line))
#define VSP_PYFRAME_IS(w) (((w) & VSP_PYFRAME_BIT) != 0)
#define VSP_PYFRAME_CODE(w) ((uint32_t)((w) >> 32) & VSP_PYFRAME_CODE_MAX)
#define VSP_PYFRAME_LINE(w) ((uint32_t)(w))
#define VSP_PYFRAME_IS_ENTRY(w) (((w) & VSP_PYFRAME_ENTRY) != 0)

/* Version 4: a Python code object, named once, before the first STACK record whose frames name
 * its id. The shim keeps a reference on every code object it has named (the address is never
 * reused for another), or, when its table is full, names the object again under a fresh id. */
struct vsp_rec_pycode {
    uint32_t id;        /* 1 .. VSP_PYFRAME_CODE_MAX */
    uint32_t name_len;  /* bytes of the qualified name (co_qualname; co_name before 3.11), NUL included */
    uint32_t file_len;  /* bytes of co_filename, NUL included */
    uint32_t firstline; /* co_firstlineno */
};

/* Operations. */
enum vsp_op {
    VSP_OP_ALLOC = 1,
    VSP_OP_FREE = 2,
    VSP_OP_MAP = 3,   /* cuMemMap: a physical allocation mapped at an address (size bytes) */
    VSP_OP_UNMAP = 4,
    VSP_OP_RESERVE = 5,   /* cuMemAddressReserve: an address range (size bytes), no memory */
    VSP_OP_UNRESERVE = 6, /* cuMemAddressFree */
    VSP_OP_VIEW = 7,      /* a device address for host memory (ptr; aux: the host pointer) */
};

/* Memory kinds. */
enum vsp_memory {
    VSP_MEM_UNKNOWN = 0,
    VSP_MEM_DEVICE = 1,          /* cudaMalloc, cuMemAlloc, pitched, stream-ordered */
    VSP_MEM_MANAGED = 2,         /* cudaMallocManaged, cuMemAllocManaged */
    VSP_MEM_HOST_PINNED = 3,     /* cudaMallocHost, cudaHostAlloc, cuMemAllocHost, cuMemHostAlloc */
    VSP_MEM_HOST_MAPPED = 4,     /* pinned host memory with the mapped flag */
    VSP_MEM_HOST_REGISTERED = 5, /* cudaHostRegister, cuMemHostRegister */
    VSP_MEM_ARRAY = 6,           /* CUDA arrays and mipmapped arrays (device memory) */
    VSP_MEM_PHYSICAL = 7,        /* cuMemCreate physical memory (device) */
    VSP_MEM_MAPPING = 8,         /* cuMemMap address ranges (not counted as bytes) */
    VSP_MEM_HOST_POOL = 9,       /* stream-ordered allocations from a host-located memory pool */
    VSP_MEM_IMPORTED = 10,       /* memory of another process or API mapped here (IPC, external
                                    memory, shareable handles) */
    VSP_MEM_COUNT_ = 11
};

/* API identifiers: stable numbers, never reused. Names in vsp_api_names below. */
enum vsp_api {
    VSP_API_UNKNOWN = 0,
    VSP_API_cudaMalloc = 1,
    VSP_API_cudaMallocManaged = 2,
    VSP_API_cudaMallocHost = 3,
    VSP_API_cudaHostAlloc = 4,
    VSP_API_cudaMallocPitch = 5,
    VSP_API_cudaMalloc3D = 6,
    VSP_API_cudaMallocArray = 7,
    VSP_API_cudaMalloc3DArray = 8,
    VSP_API_cudaMallocMipmappedArray = 9,
    VSP_API_cudaMallocAsync = 10,
    VSP_API_cudaMallocFromPoolAsync = 11,
    VSP_API_cudaFree = 12,
    VSP_API_cudaFreeHost = 13,
    VSP_API_cudaFreeAsync = 14,
    VSP_API_cudaFreeArray = 15,
    VSP_API_cudaFreeMipmappedArray = 16,
    VSP_API_cudaHostRegister = 17,
    VSP_API_cudaHostUnregister = 18,
    VSP_API_cudaMallocAsync_ptsz = 19,
    VSP_API_cudaMallocFromPoolAsync_ptsz = 20,
    VSP_API_cudaFreeAsync_ptsz = 21,
    VSP_API_cuMemAlloc_v2 = 32,
    VSP_API_cuMemAllocPitch_v2 = 33,
    VSP_API_cuMemAllocManaged = 34,
    VSP_API_cuMemFree_v2 = 35,
    VSP_API_cuMemAllocHost_v2 = 36,
    VSP_API_cuMemHostAlloc = 37,
    VSP_API_cuMemFreeHost = 38,
    VSP_API_cuMemHostRegister_v2 = 39,
    VSP_API_cuMemHostUnregister = 40,
    VSP_API_cuMemAllocAsync = 41,
    VSP_API_cuMemAllocAsync_ptsz = 42,
    VSP_API_cuMemAllocFromPoolAsync = 43,
    VSP_API_cuMemAllocFromPoolAsync_ptsz = 44,
    VSP_API_cuMemFreeAsync = 45,
    VSP_API_cuMemFreeAsync_ptsz = 46,
    VSP_API_cuMemCreate = 47,
    VSP_API_cuMemRelease = 48,
    VSP_API_cuMemMap = 49,
    VSP_API_cuMemUnmap = 50,
    VSP_API_cuMemHostRegister = 51, /* the pre-6.5 ABI (same arguments) */
    VSP_API_cuMemAllocHost = 52,    /* the CUDA 2.0 ABI (32-bit size) */
    VSP_API_cuArrayCreate_v2 = 53,  /* CUDA arrays at the driver layer (size from the descriptor) */
    VSP_API_cuArray3DCreate_v2 = 54,
    VSP_API_cuArrayDestroy = 55,
    VSP_API_cuMipmappedArrayCreate = 56,
    VSP_API_cuMipmappedArrayDestroy = 57,
    /* Pool calls appear only when VRAMSPY_ENFORCE refused them (a host-located pool: eflags DENIED,
     * memory host_pool, size 0); allocations from a host-located pool carry memory host_pool. */
    VSP_API_cuMemPoolCreate = 58,
    VSP_API_cuDeviceSetMemPool = 59,
    VSP_API_cuMemSetMemPool = 60,
    VSP_API_cudaMemPoolCreate = 61,
    VSP_API_cudaDeviceSetMemPool = 62,
    VSP_API_cuGraphAddMemAllocNode = 63, /* a graph memory node: eflags GRAPH */
    VSP_API_cuGraphAddMemFreeNode = 64,
    VSP_API_cuIpcOpenMemHandle_v2 = 65,  /* memory kind imported */
    VSP_API_cuIpcCloseMemHandle = 66,
    VSP_API_cuMemAddressReserve = 67,
    VSP_API_cuMemAddressFree = 68,
    VSP_API_cuMemHostGetDevicePointer_v2 = 69,
    VSP_API_cudaHostGetDevicePointer = 70,
    VSP_API_cuImportExternalMemory = 71,          /* memory kind imported */
    VSP_API_cuExternalMemoryGetMappedBuffer = 72, /* imported; freed by cuMemFree_v2 */
    VSP_API_cuDestroyExternalMemory = 73,
    VSP_API_cuMemImportFromShareableHandle = 74,  /* imported; released by cuMemRelease */
    VSP_API_cudaGraphAddMemAllocNode = 75,        /* eflags GRAPH */
    VSP_API_cudaGraphAddMemFreeNode = 76,
    VSP_API_COUNT_ = 77
};

/* One intercepted call. */
struct vsp_rec_event {
    uint64_t time_ns;     /* CLOCK_MONOTONIC when the real call returned (allocs) or began (frees) */
    uint64_t ptr;         /* address returned or freed; array/handle value for arrays and cuMemCreate */
    uint64_t size;        /* bytes: requested size (pitched: pitch*height[*depth]; frees: 0) */
    uint64_t flags;       /* the API's flags argument */
    uint64_t stream;      /* stream handle for stream-ordered calls, else 0 */
    uint64_t aux;         /* pitch for pitched allocs, pool for *FromPool*, handle for cuMemMap */
    uint64_t free_bytes;  /* device free memory when a device allocation failed, else UINT64_MAX */
    uint64_t total_bytes; /* device total memory at that moment, else UINT64_MAX */
    uint32_t stack_id;    /* VSP_REC_STACK id, 0 when none */
    uint32_t tid;         /* kernel thread id */
    int32_t result;       /* what the real call returned (cudaError_t or CUresult) */
    int32_t device;       /* device ordinal, -1 when unknown */
    uint16_t api;         /* enum vsp_api */
    uint8_t op;           /* enum vsp_op */
    uint8_t memory;       /* enum vsp_memory */
    uint32_t eflags;      /* VSP_EVENT_* (was reserved, always 0, before these flags existed) */
    /* Version 2. Event order: taken from header.next_seq before the real call of a free and after
     * the real call of an allocation, so a free sorts before the allocation that reuses its
     * address although its record is written after the free returned (nothing is held across a
     * real call, which may block). Dense: 0, 1, 2, ... in a process; a gap is an event that was
     * dropped or never written. Records are in the file in write order; readers restore seq order
     * in a bounded window (docs/trace-format.md). Absent (payload of 88 bytes) in version 1. */
    uint64_t seq;
};
#define VSP_REC_EVENT_V1_SIZE 88u /* a version-1 event payload: everything before seq */

/* vsp_rec_event.eflags */
#define VSP_EVENT_DENIED 0x1u /* VRAMSPY_ENFORCE refused it: the real call was not made */
#define VSP_EVENT_GRAPH 0x2u  /* a graph memory node: recorded when the node is added; the memory is
                                 taken when the graph runs, and a free node gives it back */
#define VSP_EVENT_LABEL_SHIFT 16 /* bits 16..31: purpose label id (VSP_REC_LABEL), 0 = none */

/* Version 3: one thread's events, coded compactly (vramspy/event_codec.h), each delta-coded
 * against the one before it in the same batch (the first against zero values and the header's
 * start_monotonic_ns). The shim reserves a batch record of fixed length and appends events to it
 * while it is open: `state` counts the bytes of whole events written so far, so a reader of a
 * process that died with the batch open (the record reserved, not committed) still reads every
 * event in it. A committed batch is final; bytes past `used` are padding. */
struct vsp_rec_batch {
    uint64_t state;   /* bits 0-31: bytes of coded events after this struct; bits 32-61: the
                         record's stream position >> 16 (mod 2^30), so that the owner never takes
                         a later record at the same place in the ring for its batch;
                         VSP_BATCH_* bits */
    uint32_t tid;     /* kernel thread id of every event in it */
    uint32_t reserved;
};
#define VSP_BATCH_USED_MASK 0xffffffffull
#define VSP_BATCH_TAG(pos) ((((pos) >> 16) & 0x3fffffffull) << 32)
#define VSP_BATCH_TAG_MASK (0x3fffffffull << 32)
#define VSP_BATCH_WRITING (1ull << 62) /* the owner is appending an event (not yet counted) */
#define VSP_BATCH_CLOSED (1ull << 63)  /* no more events: the owner or the drainer closed it */

struct vsp_rec_label {
    uint32_t id;       /* 1..65535 */
    uint32_t name_len; /* NUL included */
};

/* A sample of the device memory the process uses, measured outside the hooks, beside what the
 * hooks account for at that moment: how much of the process's memory the trace explains
 * ("coverage"). Taken after the first recorded call (the baseline: the context), at each failed
 * device allocation, every VRAMSPY_METRICS_INTERVAL when metrics are on, and at exit. The
 * baseline (the context's own memory) is the first sample's used_bytes - traced_bytes; at any
 * sample, untracked = used_bytes - baseline - traced_bytes. */
enum vsp_usage_source {
    VSP_USAGE_NVML = 1,   /* this pid's used memory on every device (NVML compute processes) */
    VSP_USAGE_DEVICE = 2, /* device-wide used memory (total - free, cuMemGetInfo_v2): other
                             processes on the device count too */
};
enum vsp_usage_reason { VSP_USAGE_FIRST = 1, VSP_USAGE_FAILURE = 2, VSP_USAGE_PERIODIC = 3, VSP_USAGE_EXIT = 4 };
struct vsp_rec_usage {
    uint64_t time_ns;      /* CLOCK_MONOTONIC */
    uint64_t used_bytes;   /* measured (per source) */
    uint64_t total_bytes;  /* the device's total memory, UINT64_MAX unknown */
    uint64_t traced_bytes; /* device bytes live in the shim's own table at that moment */
    uint32_t source;       /* enum vsp_usage_source */
    uint32_t reason;       /* enum vsp_usage_reason */
};

/* A memory pool's own accounting (cuMemPoolGetAttribute), sampled with the USAGE records at each
 * failed device allocation and at exit, for every pool the process named and the current
 * device's default pool once stream-ordered allocation was used: what the device really holds
 * for the pool (reserved, given its release threshold) beside what is handed out (used). */
struct vsp_rec_pool {
    uint64_t time_ns;
    uint64_t pool;              /* the pool handle */
    uint64_t reserved_current;  /* CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT (UINT64_MAX: unknown) */
    uint64_t reserved_high;
    uint64_t used_current;
    uint64_t used_high;
    uint32_t host;              /* 1: host-located */
    uint32_t reason;            /* enum vsp_usage_reason */
};

/* Written once, after the PROCESS record: the machine and the process's place in a multi-process
 * job, from the usual launchers' variables (torchrun/accelerate RANK, LOCAL_RANK, WORLD_SIZE;
 * Open MPI OMPI_COMM_WORLD_RANK/_LOCAL_RANK/_SIZE; MPICH/Hydra PMI_RANK, PMI_SIZE; Slurm
 * SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS). -1: not set. The header's start_realtime_ns and
 * start_monotonic_ns, taken together, anchor the trace's clock to wall-clock time, so traces of
 * several hosts line up. */
struct vsp_rec_host {
    int32_t rank;
    int32_t local_rank;
    int32_t world_size;
    uint32_t host_len;  /* bytes of the host name (gethostname), NUL included */
};

/* Written once at clean finalisation: the shim's own counters (a reader recomputes its own). */
struct vsp_rec_end {
    uint64_t time_ns;
    uint64_t allocations;
    uint64_t frees;
    uint64_t failed;
    uint64_t host_allocations;
    uint64_t live_allocations;
    uint64_t live_bytes;
    uint64_t peak_device_bytes;
    uint64_t dropped;
    uint64_t nested_skipped; /* hook calls from inside another hook: the inner layer, passed through */
    /* Appended (absent in shorter END records of older shims, read as 0): hooks left by a non-local
     * jump (siglongjmp out of a blocked call): their calls were made but are not in the trace. */
    uint64_t abandoned;
};
#define VSP_REC_END_MIN_SIZE 80u /* the END payload of shims before `abandoned` */

/* Written (traces with VSP_FLAG_SEQMARKS) by the drainer after it copied part of the ring into the
 * log: every event number below next_seq is either in a record before this one or lost (dropped,
 * or its writer was killed), except the n_inflight frees listed after the struct (number and
 * address): frees whose real call had not returned when the mark was taken (their events come
 * later, however much later). A reader can
 * therefore stop waiting for a missing number the moment a mark says so, and keep waiting, with
 * no window, for a free that is known to be in flight. flags VSP_SEQMARK_PARTIAL: some free in
 * flight could not be listed (its number was being taken, or the table was full): the mark
 * settles nothing. */
struct vsp_rec_seqmark {
    uint64_t next_seq;
    uint32_t n_inflight;
    uint32_t flags;
};
struct vsp_seqmark_free {
    uint64_t seq; /* its event number */
    uint64_t ptr; /* the address it frees (only events on it need wait for it) */
};
#define VSP_SEQMARK_PARTIAL 1u

#define VSP_UNKNOWN_BYTES UINT64_MAX

_Static_assert(sizeof(struct vsp_file_header) == VSP_HEADER_SIZE, "header size");
_Static_assert(offsetof(struct vsp_file_header, flags) == 40, "flags offset");
_Static_assert(offsetof(struct vsp_file_header, end_monotonic_ns) == 64, "end offset");
_Static_assert(offsetof(struct vsp_file_header, head) == 128, "head offset");
_Static_assert(offsetof(struct vsp_file_header, tail) == 192, "tail offset");
_Static_assert(offsetof(struct vsp_file_header, dropped) == 256, "dropped offset");
_Static_assert(offsetof(struct vsp_file_header, next_seq) == 320, "next_seq offset");
_Static_assert(sizeof(struct vsp_rec_hdr) == 16, "record header size");
_Static_assert(sizeof(struct vsp_rec_process) == 48, "process record size");
_Static_assert(sizeof(struct vsp_rec_module) == 32, "module record size");
_Static_assert(sizeof(struct vsp_rec_stack) == 8, "stack record size");
_Static_assert(sizeof(struct vsp_rec_event) == 96, "event record size");
_Static_assert(offsetof(struct vsp_rec_event, seq) == VSP_REC_EVENT_V1_SIZE, "event seq offset");
_Static_assert(offsetof(struct vsp_rec_event, stack_id) == 64, "event stack_id offset");
_Static_assert(offsetof(struct vsp_rec_event, api) == 80, "event api offset");
_Static_assert(sizeof(struct vsp_rec_end) == 88, "end record size");
_Static_assert(sizeof(struct vsp_rec_seqmark) == 16, "seqmark record size");
_Static_assert(sizeof(struct vsp_seqmark_free) == 16, "seqmark entry size");
_Static_assert(offsetof(struct vsp_rec_seqmark, n_inflight) == 8, "seqmark n_inflight offset");
_Static_assert(offsetof(struct vsp_rec_end, abandoned) == 80, "end abandoned offset");
_Static_assert(sizeof(struct vsp_rec_label) == 8, "label record size");
_Static_assert(sizeof(struct vsp_rec_usage) == 40, "usage record size");
_Static_assert(sizeof(struct vsp_rec_pool) == 56, "pool record size");
_Static_assert(sizeof(struct vsp_rec_host) == 16, "host record size");
_Static_assert(sizeof(struct vsp_rec_batch) == 16, "batch record size");
_Static_assert(sizeof(struct vsp_rec_pycode) == 16, "pycode record size");

static inline const char *vsp_api_name(unsigned api)
{
    /* (arrays, not pointers: no relocation of the table in the shim at every process's start) */
    static const char names[VSP_API_COUNT_][32] = {
        [VSP_API_UNKNOWN] = "unknown",
        [VSP_API_cudaMalloc] = "cudaMalloc",
        [VSP_API_cudaMallocManaged] = "cudaMallocManaged",
        [VSP_API_cudaMallocHost] = "cudaMallocHost",
        [VSP_API_cudaHostAlloc] = "cudaHostAlloc",
        [VSP_API_cudaMallocPitch] = "cudaMallocPitch",
        [VSP_API_cudaMalloc3D] = "cudaMalloc3D",
        [VSP_API_cudaMallocArray] = "cudaMallocArray",
        [VSP_API_cudaMalloc3DArray] = "cudaMalloc3DArray",
        [VSP_API_cudaMallocMipmappedArray] = "cudaMallocMipmappedArray",
        [VSP_API_cudaMallocAsync] = "cudaMallocAsync",
        [VSP_API_cudaMallocFromPoolAsync] = "cudaMallocFromPoolAsync",
        [VSP_API_cudaFree] = "cudaFree",
        [VSP_API_cudaFreeHost] = "cudaFreeHost",
        [VSP_API_cudaFreeAsync] = "cudaFreeAsync",
        [VSP_API_cudaFreeArray] = "cudaFreeArray",
        [VSP_API_cudaFreeMipmappedArray] = "cudaFreeMipmappedArray",
        [VSP_API_cudaHostRegister] = "cudaHostRegister",
        [VSP_API_cudaHostUnregister] = "cudaHostUnregister",
        [VSP_API_cudaMallocAsync_ptsz] = "cudaMallocAsync_ptsz",
        [VSP_API_cudaMallocFromPoolAsync_ptsz] = "cudaMallocFromPoolAsync_ptsz",
        [VSP_API_cudaFreeAsync_ptsz] = "cudaFreeAsync_ptsz",
        [VSP_API_cuMemAlloc_v2] = "cuMemAlloc_v2",
        [VSP_API_cuMemAllocPitch_v2] = "cuMemAllocPitch_v2",
        [VSP_API_cuMemAllocManaged] = "cuMemAllocManaged",
        [VSP_API_cuMemFree_v2] = "cuMemFree_v2",
        [VSP_API_cuMemAllocHost_v2] = "cuMemAllocHost_v2",
        [VSP_API_cuMemHostAlloc] = "cuMemHostAlloc",
        [VSP_API_cuMemFreeHost] = "cuMemFreeHost",
        [VSP_API_cuMemHostRegister_v2] = "cuMemHostRegister_v2",
        [VSP_API_cuMemHostUnregister] = "cuMemHostUnregister",
        [VSP_API_cuMemAllocAsync] = "cuMemAllocAsync",
        [VSP_API_cuMemAllocAsync_ptsz] = "cuMemAllocAsync_ptsz",
        [VSP_API_cuMemAllocFromPoolAsync] = "cuMemAllocFromPoolAsync",
        [VSP_API_cuMemAllocFromPoolAsync_ptsz] = "cuMemAllocFromPoolAsync_ptsz",
        [VSP_API_cuMemFreeAsync] = "cuMemFreeAsync",
        [VSP_API_cuMemFreeAsync_ptsz] = "cuMemFreeAsync_ptsz",
        [VSP_API_cuMemCreate] = "cuMemCreate",
        [VSP_API_cuMemRelease] = "cuMemRelease",
        [VSP_API_cuMemMap] = "cuMemMap",
        [VSP_API_cuMemUnmap] = "cuMemUnmap",
        [VSP_API_cuMemHostRegister] = "cuMemHostRegister",
        [VSP_API_cuMemAllocHost] = "cuMemAllocHost",
        [VSP_API_cuArrayCreate_v2] = "cuArrayCreate_v2",
        [VSP_API_cuArray3DCreate_v2] = "cuArray3DCreate_v2",
        [VSP_API_cuArrayDestroy] = "cuArrayDestroy",
        [VSP_API_cuMipmappedArrayCreate] = "cuMipmappedArrayCreate",
        [VSP_API_cuMipmappedArrayDestroy] = "cuMipmappedArrayDestroy",
        [VSP_API_cuMemPoolCreate] = "cuMemPoolCreate",
        [VSP_API_cuDeviceSetMemPool] = "cuDeviceSetMemPool",
        [VSP_API_cuMemSetMemPool] = "cuMemSetMemPool",
        [VSP_API_cudaMemPoolCreate] = "cudaMemPoolCreate",
        [VSP_API_cudaDeviceSetMemPool] = "cudaDeviceSetMemPool",
        [VSP_API_cuGraphAddMemAllocNode] = "cuGraphAddMemAllocNode",
        [VSP_API_cuGraphAddMemFreeNode] = "cuGraphAddMemFreeNode",
        [VSP_API_cuIpcOpenMemHandle_v2] = "cuIpcOpenMemHandle_v2",
        [VSP_API_cuIpcCloseMemHandle] = "cuIpcCloseMemHandle",
        [VSP_API_cuMemAddressReserve] = "cuMemAddressReserve",
        [VSP_API_cuMemAddressFree] = "cuMemAddressFree",
        [VSP_API_cuMemHostGetDevicePointer_v2] = "cuMemHostGetDevicePointer_v2",
        [VSP_API_cudaHostGetDevicePointer] = "cudaHostGetDevicePointer",
        [VSP_API_cuImportExternalMemory] = "cuImportExternalMemory",
        [VSP_API_cuExternalMemoryGetMappedBuffer] = "cuExternalMemoryGetMappedBuffer",
        [VSP_API_cuDestroyExternalMemory] = "cuDestroyExternalMemory",
        [VSP_API_cuMemImportFromShareableHandle] = "cuMemImportFromShareableHandle",
        [VSP_API_cudaGraphAddMemAllocNode] = "cudaGraphAddMemAllocNode",
        [VSP_API_cudaGraphAddMemFreeNode] = "cudaGraphAddMemFreeNode",
    };
    return api < VSP_API_COUNT_ && names[api][0] ? names[api] : "unknown";
}

static inline const char *vsp_memory_name(unsigned m)
{
    static const char names[VSP_MEM_COUNT_][16] = {
        "unknown", "device", "managed", "host_pinned", "host_mapped",
        "host_registered", "array", "physical", "mapping", "host_pool", "imported",
    };
    return m < VSP_MEM_COUNT_ ? names[m] : "unknown";
}

/* Device-resident kinds: these make up "device bytes" and the peak. */
static inline int vsp_memory_is_device(unsigned m)
{
    return m == VSP_MEM_DEVICE || m == VSP_MEM_ARRAY || m == VSP_MEM_PHYSICAL;
}

/* Host memory a VRAM-only process should not use (the "host fallback" kinds). */
static inline int vsp_memory_is_host(unsigned m)
{
    return m == VSP_MEM_MANAGED || m == VSP_MEM_HOST_PINNED || m == VSP_MEM_HOST_MAPPED ||
           m == VSP_MEM_HOST_REGISTERED || m == VSP_MEM_HOST_POOL;
}

#endif
