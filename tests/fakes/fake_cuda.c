/*
 * fake_cuda.c - a fake CUDA *driver* (libcuda.so.1) for vramspy's tests.
 *
 * It lets the shim be tested on machines without a GPU: the fake runtime
 * (fake_cudart.c, or any program) dlopen()s this library exactly as it would
 * NVIDIA's driver, and reaches it through cuGetProcAddress_v2.
 *
 * Build (from the repository root):
 *   mkdir -p build/tests/fakes
 *   gcc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -I$(CUDA_HOME)/include \
 *       -Wl,-soname,libcuda.so.1 -o build/tests/fakes/libcuda.so.1 \
 *       tests/fakes/fake_cuda.c -lpthread
 *   ($(CUDA_HOME) is Make syntax; in a shell write ${CUDA_HOME:-/usr/local/cuda}.
 *   Only the CUDA headers are used.)
 *
 * Model:
 *  - Device memory is a simulated arena: a PROT_NONE, MAP_NORESERVE range of
 *    VSP_FAKE_DEVICE_MEM bytes (suffix K/M/G/T accepted, default 1 GiB,
 *    rounded down to 512 bytes).  Device pointers are unique addresses in it
 *    and must never be dereferenced.  First-fit free list, coalescing on free,
 *    512-byte granularity, so fragmentation failures are real.
 *    cuMemGetInfo reports (sum of holes, capacity).
 *    Device allocations, pitched, stream-ordered/pool, arrays, mipmapped
 *    arrays and cuMemCreate physical handles all consume the arena.
 *    Stream-ordered frees return memory at once, unless the pool's release
 *    threshold (CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) is set: then freed blocks
 *    stay reserved by the pool (cached, still taken from the arena) while the
 *    pool's reserved bytes stay within the threshold, are reused by the
 *    pool's next allocations of their size or less, and go back to the arena
 *    on cuMemPoolTrimTo or cuMemPoolDestroy (reserved = used + cached).
 *  - VSP_FAKE_TEARDOWN_AT_EXIT=1: cuInit registers an atexit handler that
 *    tears the driver down as the real runtime does in its own exit handler:
 *    every later call returns CUDA_ERROR_DEINITIALIZED (tests that a tracer
 *    samples pools and usage at exit before the runtime is gone).
 *    Pools may be host-located (cuMemPoolCreate with a HOST/HOST_NUMA
 *    location; CUDA 13's cuMemGetDefaultMemPool for a host location); a
 *    device's current pool (cuDeviceSetMemPool, cuMemSetMemPool) serves
 *    cuMemAllocAsync. Host-pool memory comes from the same arena.
 *  - VSP_FAKE_HIDDEN_MEM=<size> (suffixes as above): that much device memory
 *    is taken from the arena at the second device allocation, through no
 *    API a tracer can see (for coverage tests); cuMemGetInfo shows it.
 *  - Graphs are opaque; cuGraphAddMemAllocNode takes its memory from the
 *    arena when the node is added (the real driver does at launch),
 *    cuGraphAddMemFreeNode gives it back.
 *  - IPC: cuIpcGetMemHandle names a device allocation; cuIpcOpenMemHandle_v2
 *    maps a new PROT_NONE range of its size (as another process would get),
 *    cuIpcCloseMemHandle unmaps it. cuImportExternalMemory gives an object of
 *    the described size; cuExternalMemoryGetMappedBuffer maps a new range of
 *    the buffer's size, which cuMemFree_v2 unmaps.
 *  - Host memory (cuMemAllocHost, cuMemHostAlloc, cuMemAllocManaged) is real
 *    host memory (posix_memalign 4096) and does not consume the arena.
 *  - cuMemAddressReserve reserves real PROT_NONE address space (outside the
 *    arena); cuMemMap/cuMemUnmap only keep books.  A physical handle's arena
 *    space is returned when it has been released AND unmapped everywhere.
 *  - Everything except cuInit, cuDriverGetVersion, cuGetProcAddress*,
 *    cuGetErrorName/String and cuGetExportTable returns
 *    CUDA_ERROR_NOT_INITIALIZED before cuInit(0).  No current context is
 *    required for memory calls (unlike the real driver).
 *  - cuGetProcAddress_v2 / cuGetProcAddress (legacy, 4 arguments) resolve
 *    *base* names through a table {name, version introduced, function,
 *    per-thread-stream variant}; every exported function is in it.  The
 *    newest entry with version <= cudaVersion wins (so "cuCtxGetDevice" and
 *    "cuCtxSynchronize" at 13000 give CUDA 13's _v2 ABI with a context
 *    argument); flag 2 picks the _ptsz variant where there is one.  Unknown
 *    or empty name: CUDA_ERROR_NOT_FOUND, *pfn = NULL, status
 *    SYMBOL_NOT_FOUND; version too low: the same with VERSION_NOT_SUFFICIENT;
 *    cudaVersion above 13000 or unknown flag bits: CUDA_ERROR_INVALID_VALUE.
 *    Table entries point at local aliases, so a preloaded library exporting
 *    the same names never replaces what the table hands out.
 *  - VSP_FAKE_LOG=<file>: one line appended per lookup:
 *      "gpa NAME VERSION FLAGS"        (cuGetProcAddress_v2)
 *      "gpa_legacy NAME VERSION FLAGS" (the 4-argument cuGetProcAddress)
 *    An empty name is written as "" and a NULL one as (null).
 *  - CUDA_VISIBLE_DEVICES set to the empty string: cuInit fails with
 *    CUDA_ERROR_NO_DEVICE, as NVIDIA's driver does when every device is
 *    hidden (unset, or any other value: one device, as before).
 *  - VSP_FAKE_GPA_EXPORTS=1: cuGetProcAddress(_v2) hands out the addresses of
 *    the library's *exported* functions, taken through dynamic relocations
 *    (the GOT) instead of the local aliases, as a driver built without
 *    -Bsymbolic would: a preloaded library exporting the same names then gets
 *    its own functions back from the lookup.  Read at each lookup.
 *  - VSP_FAKE_BLOCK_FREE_SIZE=<bytes> (exact, optional K/M/G suffix, read
 *    once at the first cuMemFree): cuMemFree of a device allocation of exactly
 *    that requested size blocks (before freeing anything, holding no lock of
 *    the driver) until some thread calls the exported
 *      void vsp_fake_release_blocked(void);
 *    after which no free blocks any more.  int vsp_fake_blocked_frees(void)
 *    says how many frees are blocked right now.  Models a real cudaFree that
 *    synchronises with a long-running kernel.  Programs find both with
 *    dlsym(dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD), ...).
 *  - VSP_FAKE_THREAD_CACHE=1 (read at cuInit): cuMemFree_v2 of a plain
 *    device allocation keeps the block in a cache of the calling thread (up
 *    to THREAD_CACHE blocks, still taken from the arena, as a caching
 *    allocator's reserve), and the thread's next cuMemAlloc_v2 of the same
 *    size takes it back: neither takes the driver's lock, so threads that
 *    allocate at once do not meet in the double (make bench's thread rows:
 *    the global lock made every thread row a measure of its futex). A cached
 *    block is known only to its thread's cuMemAlloc_v2/cuMemFree_v2 (a second
 *    free of it fails with CUDA_ERROR_INVALID_VALUE; other threads and other
 *    entry points do not see it) and stays reserved after its thread ends.
 *  - VSP_FAKE_MEMINFO_NEEDS_CONTEXT=1 (read at cuInit): cuMemGetInfo fails
 *    with CUDA_ERROR_INVALID_CONTEXT on a thread with no current context, as
 *    the real driver's does (a tracer's exit handler on a thread that never
 *    called CUDA must ask the runtime, which makes the context current).
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <cudaTypedefs.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Declarations cuda.h hides behind its version macros or does not give.     */

/* cuda.h maps cuGetProcAddress to the 5-argument _v2; the library also exports
 * the legacy 4-argument symbol (PFN_cuGetProcAddress_v11030). */
#undef cuGetProcAddress
CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags);
/* Older ABIs with the same signature as their _v2 successor. */
#undef cuStreamDestroy
CUresult CUDAAPI cuStreamDestroy(CUstream hStream);
#undef cuDevicePrimaryCtxRelease
CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev);
#undef cuDevicePrimaryCtxReset
CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev);
#undef cuMemHostRegister
CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags);
/* The CUDA 2.0 ABI of cuMemAllocHost (32-bit size), still exported by the driver. */
#undef cuMemAllocHost
CUresult CUDAAPI cuMemAllocHost(void **pp, unsigned int bytesize);
/* Per-thread default stream variants (declared by cuda.h only internally). */
CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream);
CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream);
CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream);
CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream hStream);

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------ */
/* Constants and global state                                               */

#define FAKE_DRIVER_VERSION 13000
#define ARENA_ALIGN ((size_t)512)
#define HOST_ALIGN ((size_t)4096)
#define VMM_GRANULARITY ((size_t)2 << 20)
#define DEFAULT_CAPACITY ((size_t)1 << 30)
#define FAKE_DEVICE_NAME "vramspy fake GPU"

enum rec_kind {
    K_DEV = 1,  /* cuMemAlloc, cuMemAllocPitch, cuMemAlloc*Async       (g_dev) */
    K_ARRAY,    /* cuArrayCreate, cuArray3DCreate                      (g_dev) */
    K_MIPMAP,   /* cuMipmappedArrayCreate                              (g_dev) */
    K_PHYS,     /* cuMemCreate                                         (g_dev) */
    K_PINNED,   /* cuMemAllocHost, cuMemHostAlloc                      (g_host) */
    K_MANAGED,  /* cuMemAllocManaged                                   (g_host) */
    K_REG,      /* cuMemHostRegister                                   (g_reg) */
    K_VA,       /* cuMemAddressReserve                                 (g_va) */
    K_STREAM,   /* cuStreamCreate                                      (g_obj) */
    K_POOL,     /* cuMemPoolCreate                                     (g_obj) */
    K_IPC,      /* cuIpcOpenMemHandle_v2: another process's memory     (g_va) */
    K_EXTBUF,   /* cuExternalMemoryGetMappedBuffer: freed by cuMemFree (g_va) */
};

struct fake_pool {
    int is_default;
    int host;       /* a host-located pool (CUDA 12.2+): its memory is pinned host memory */
    int destroyed;  /* cuMemPoolDestroy'd, kept until its last allocation goes */
    size_t live;    /* outstanding allocations */
    unsigned long long used, used_high, threshold; /* bytes (arena) */
    unsigned long long cached, reserved_high; /* freed blocks kept reserved (release threshold) */
    struct cblock {
        uintptr_t addr;
        size_t size;
        struct cblock *next;
    } *cache;
};

struct vmapping {   /* one cuMemMap inside a reservation */
    uintptr_t va;
    size_t size;
    struct rec *phys;
    struct vmapping *next;
};

typedef struct rec {
    uintptr_t key;          /* address / handle */
    size_t size;            /* requested bytes */
    size_t asize;           /* arena bytes (device kinds) */
    int kind;
    unsigned flags;
    struct fake_pool *pool; /* stream-ordered allocations */
    int map_count;          /* K_PHYS: live mappings */
    int released;           /* K_PHYS: cuMemRelease called */
    struct vmapping *maps;  /* K_VA: mappings */
    void *obj;              /* K_STREAM / K_POOL: the object */
    struct rec *next;
} rec_t;

typedef struct {
    rec_t **b;
    size_t nb, n;
} map_t;

typedef struct hole {
    size_t off, size;
    struct hole *next;
} hole_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

/* Fork safety of the double itself: a fork while another thread holds g_lock would leave the
 * child's copy locked forever (the shim's fork test forks a process with a busy allocating
 * thread). The real driver does not work across fork at all; the double keeps working. */
static void fork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void fork_release(void) { pthread_mutex_unlock(&g_lock); }
__attribute__((constructor)) static void fork_handlers(void)
{
    pthread_atfork(fork_prepare, fork_release, fork_release);
}
static int g_initialized;               /* atomic */
static int g_torn_down;                 /* atomic: VSP_FAKE_TEARDOWN_AT_EXIT ran */
static CUresult g_init_result = CUDA_ERROR_NOT_INITIALIZED;

static uintptr_t g_base;                /* arena */
static size_t g_capacity;
static size_t g_free_bytes;
static hole_t *g_holes;                 /* sorted by offset */

static map_t g_dev, g_host, g_reg, g_va, g_obj;

static struct fake_pool g_default_pool = {.is_default = 1};
static struct fake_pool g_host_default_pool = {.is_default = 1, .host = 1}; /* CUDA 13: the host location's default pool */
static struct fake_pool *g_cur_pool = &g_default_pool;     /* device 0's current pool (cuMemAllocAsync) */
/* VSP_FAKE_HIDDEN_MEM=<size>: device memory taken behind every hook, at the second device
 * allocation (after a tracer's baseline), as a library with a path the hooks miss would. */
static size_t g_hidden, g_allocs;
static struct { int magic; } g_primary_ctx_storage = {0x43545830};
#define PRIMARY_CTX ((CUcontext)(void *)&g_primary_ctx_storage)
static int g_primary_refcount;
static __thread CUcontext t_current_ctx;

#define REQUIRE_INIT()                                                     \
    do {                                                                   \
        if (!__atomic_load_n(&g_initialized, __ATOMIC_ACQUIRE))            \
            return CUDA_ERROR_NOT_INITIALIZED;                             \
        if (__atomic_load_n(&g_torn_down, __ATOMIC_ACQUIRE))               \
            return CUDA_ERROR_DEINITIALIZED;                               \
    } while (0)

static void die(const char *msg)
{
    static const char pfx[] = "fake libcuda: fatal: ";
    ssize_t r = write(2, pfx, sizeof pfx - 1);
    r = write(2, msg, strlen(msg));
    r = write(2, "\n", 1);
    (void)r;
    abort();
}

static int round_up(size_t v, size_t a, size_t *out)
{
    if (v > SIZE_MAX - (a - 1))
        return 0;
    *out = (v + a - 1) / a * a;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Hash map keyed by address (chained, grows).  Caller holds g_lock.          */

static size_t hash_key(uintptr_t k)
{
    uint64_t x = (uint64_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static rec_t *map_find(const map_t *m, uintptr_t key)
{
    if (!m->nb)
        return NULL;
    for (rec_t *r = m->b[hash_key(key) & (m->nb - 1)]; r; r = r->next)
        if (r->key == key)
            return r;
    return NULL;
}

static int map_insert(map_t *m, rec_t *r)
{
    if (m->n + 1 > m->nb * 2) {
        size_t nnb = m->nb ? m->nb * 2 : 64;
        rec_t **nb = calloc(nnb, sizeof *nb);
        if (!nb)
            return 0;
        for (size_t i = 0; i < m->nb; i++) {
            rec_t *c = m->b[i];
            while (c) {
                rec_t *nx = c->next;
                size_t h = hash_key(c->key) & (nnb - 1);
                c->next = nb[h];
                nb[h] = c;
                c = nx;
            }
        }
        free(m->b);
        m->b = nb;
        m->nb = nnb;
    }
    size_t h = hash_key(r->key) & (m->nb - 1);
    r->next = m->b[h];
    m->b[h] = r;
    m->n++;
    return 1;
}

static rec_t *map_remove(map_t *m, uintptr_t key)
{
    if (!m->nb)
        return NULL;
    rec_t **pp = &m->b[hash_key(key) & (m->nb - 1)];
    for (rec_t *r = *pp; r; pp = &r->next, r = *pp) {
        if (r->key == key) {
            *pp = r->next;
            m->n--;
            r->next = NULL;
            return r;
        }
    }
    return NULL;
}

/* Record whose [key, key+size) contains addr, of one of the kinds in mask. */
static rec_t *map_find_containing(const map_t *m, uintptr_t addr, unsigned kind_mask)
{
    for (size_t i = 0; i < m->nb; i++)
        for (rec_t *r = m->b[i]; r; r = r->next)
            if ((kind_mask & (1u << r->kind)) && addr >= r->key && addr - r->key < r->size)
                return r;
    return NULL;
}

static int map_overlaps(const map_t *m, uintptr_t addr, size_t size)
{
    for (size_t i = 0; i < m->nb; i++)
        for (rec_t *r = m->b[i]; r; r = r->next)
            if (addr < r->key + r->size && r->key < addr + size)
                return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Arena: first fit over a sorted hole list.  Caller holds g_lock.            */

static int arena_alloc(size_t asize, uintptr_t *out)
{
    hole_t **pp = &g_holes;
    for (hole_t *h = *pp; h; pp = &h->next, h = *pp) {
        if (h->size < asize)
            continue;
        *out = g_base + h->off;
        if (h->size == asize) {
            *pp = h->next;
            free(h);
        } else {
            h->off += asize;
            h->size -= asize;
        }
        g_free_bytes -= asize;
        return 1;
    }
    return 0;
}

static void arena_free(uintptr_t addr, size_t asize)
{
    size_t off = addr - g_base;
    hole_t *prev = NULL, *cur = g_holes;
    while (cur && cur->off < off) {
        prev = cur;
        cur = cur->next;
    }
    int join_prev = prev && prev->off + prev->size == off;
    int join_next = cur && off + asize == cur->off;
    if (join_prev && join_next) {
        prev->size += asize + cur->size;
        prev->next = cur->next;
        free(cur);
    } else if (join_prev) {
        prev->size += asize;
    } else if (join_next) {
        cur->off = off;
        cur->size += asize;
    } else {
        hole_t *h = malloc(sizeof *h);
        if (!h)
            die("out of host memory for the free list");
        h->off = off;
        h->size = asize;
        h->next = cur;
        if (prev)
            prev->next = h;
        else
            g_holes = h;
    }
    g_free_bytes += asize;
}

/* ------------------------------------------------------------------------ */
/* Initialisation                                                           */

static size_t parse_capacity(const char *s)
{
    if (!s || !*s)
        return DEFAULT_CAPACITY;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        goto bad;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B'))
        end += 2;
    else if (shift && (*end == 'b' || *end == 'B'))
        end++;
    if (*end)
        goto bad;
    if (shift && v > (SIZE_MAX >> shift))
        goto bad;
    v <<= shift;
    v &= ~(unsigned long long)(ARENA_ALIGN - 1);
    if (v == 0)
        goto bad;
    return (size_t)v;
bad: {
        static const char msg[] = "fake libcuda: bad VSP_FAKE_DEVICE_MEM, using 1 GiB\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        return DEFAULT_CAPACITY;
    }
}

/* VSP_FAKE_THREAD_CACHE: a thread's blocks, taken out of g_dev (the thread alone knows them);
 * live: handed out again by cuMemAlloc_v2, else cached. */
#define THREAD_CACHE 16
static int g_thread_cache; /* set once in do_init, before g_initialized is published */
static __thread struct tcached {
    rec_t *rec;
    int live;
} t_cache[THREAD_CACHE];
static __thread int t_cached;
static int g_meminfo_needs_context; /* VSP_FAKE_MEMINFO_NEEDS_CONTEXT: set once in do_init */

/* VSP_FAKE_TEARDOWN_AT_EXIT: what the real runtime's exit handler does to the driver. */
static void teardown_at_exit(void)
{
    __atomic_store_n(&g_torn_down, 1, __ATOMIC_RELEASE);
}

static void do_init(void)
{
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (visible && !*visible) {
        g_init_result = CUDA_ERROR_NO_DEVICE; /* every device hidden */
        return;
    }
    size_t cap = parse_capacity(getenv("VSP_FAKE_DEVICE_MEM"));
    const char *hidden = getenv("VSP_FAKE_HIDDEN_MEM");
    if (hidden && *hidden)
        g_hidden = parse_capacity(hidden);
    void *p = mmap(NULL, cap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        g_init_result = CUDA_ERROR_OUT_OF_MEMORY;
        return;
    }
    hole_t *h = malloc(sizeof *h);
    if (!h) {
        munmap(p, cap);
        g_init_result = CUDA_ERROR_OUT_OF_MEMORY;
        return;
    }
    h->off = 0;
    h->size = cap;
    h->next = NULL;
    g_holes = h;
    g_base = (uintptr_t)p;
    g_capacity = cap;
    g_free_bytes = cap;
    const char *tc = getenv("VSP_FAKE_THREAD_CACHE");
    g_thread_cache = tc && *tc == '1';
    const char *mc = getenv("VSP_FAKE_MEMINFO_NEEDS_CONTEXT");
    g_meminfo_needs_context = mc && *mc == '1';
    g_init_result = CUDA_SUCCESS;
    __atomic_store_n(&g_initialized, 1, __ATOMIC_RELEASE);
    const char *td = getenv("VSP_FAKE_TEARDOWN_AT_EXIT");
    if (td && *td == '1')
        atexit(teardown_at_exit);
}

EXPORT CUresult CUDAAPI cuInit(unsigned int Flags)
{
    if (Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&g_init_once, do_init);
    return g_init_result;
}

EXPORT CUresult CUDAAPI cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = FAKE_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

#define ERR_LIST(X)                                                                          \
    X(CUDA_SUCCESS, "no error")                                                              \
    X(CUDA_ERROR_INVALID_VALUE, "invalid argument")                                          \
    X(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")                                             \
    X(CUDA_ERROR_NOT_INITIALIZED, "initialization error")                                    \
    X(CUDA_ERROR_DEINITIALIZED, "driver shutting down")                                      \
    X(CUDA_ERROR_STUB_LIBRARY, "CUDA driver is a stub library")                              \
    X(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")                            \
    X(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal")                                   \
    X(CUDA_ERROR_INVALID_CONTEXT, "invalid device context")                                  \
    X(CUDA_ERROR_ALREADY_MAPPED, "resource already mapped")                                  \
    X(CUDA_ERROR_NOT_MAPPED, "resource not mapped")                                          \
    X(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle")                                  \
    X(CUDA_ERROR_NOT_FOUND, "named symbol not found")                                        \
    X(CUDA_ERROR_NOT_READY, "device not ready")                                              \
    X(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,                                             \
      "part or all of the requested memory range is already mapped")                         \
    X(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED,                                                 \
      "pointer does not correspond to a registered memory region")                           \
    X(CUDA_ERROR_NOT_PERMITTED, "operation not permitted")                                   \
    X(CUDA_ERROR_NOT_SUPPORTED, "operation not supported")                                   \
    X(CUDA_ERROR_UNKNOWN, "unknown error")

EXPORT CUresult CUDAAPI cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    switch (error) {
#define X(code, text) case code: *pStr = #code; return CUDA_SUCCESS;
    ERR_LIST(X)
#undef X
    default:
        *pStr = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
}

EXPORT CUresult CUDAAPI cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    switch (error) {
#define X(code, text) case code: *pStr = text; return CUDA_SUCCESS;
    ERR_LIST(X)
#undef X
    default:
        *pStr = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
}

EXPORT CUresult CUDAAPI cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    (void)ppExportTable;
    (void)pExportTableId;
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* ------------------------------------------------------------------------ */
/* Devices and contexts (one device, one primary context)                    */

EXPORT CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal)
{
    REQUIRE_INIT();
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    REQUIRE_INIT();
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice dev)
{
    REQUIRE_INIT();
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    size_t n = strlen(FAKE_DEVICE_NAME);
    if (n > (size_t)len - 1)
        n = (size_t)len - 1;
    memcpy(name, FAKE_DEVICE_NAME, n);
    name[n] = '\0';
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    REQUIRE_INIT();
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *bytes = g_capacity;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    REQUIRE_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_lock);
    g_primary_refcount++;
    pthread_mutex_unlock(&g_lock);
    *pctx = PRIMARY_CTX;
    return CUDA_SUCCESS;
}

static CUresult primary_release(CUdevice dev)
{
    REQUIRE_INIT();
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    CUresult r = CUDA_SUCCESS;
    pthread_mutex_lock(&g_lock);
    if (g_primary_refcount > 0)
        g_primary_refcount--;
    else
        r = CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_unlock(&g_lock);
    return r;
}

EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev) { return primary_release(dev); }
EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) { return primary_release(dev); }

static void pool_drop_alloc(struct fake_pool *pool, uintptr_t addr, size_t bytes);

/* Resetting the primary context frees every device allocation, array and
 * mipmapped array (as cudaDeviceReset does).  cuMemCreate handles, VA
 * reservations, streams, pools and host memory are left alone. */
static CUresult primary_reset(CUdevice dev)
{
    REQUIRE_INIT();
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_dev.nb; i++) {
        rec_t **pp = &g_dev.b[i];
        while (*pp) {
            rec_t *r = *pp;
            if (r->kind == K_DEV || r->kind == K_ARRAY || r->kind == K_MIPMAP) {
                *pp = r->next;
                g_dev.n--;
                if (r->pool)
                    pool_drop_alloc(r->pool, r->key, r->asize);
                else
                    arena_free(r->key, r->asize);
                free(r);
            } else {
                pp = &r->next;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset_v2(CUdevice dev) { return primary_reset(dev); }
EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev) { return primary_reset(dev); }

EXPORT CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
    REQUIRE_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = t_current_ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    REQUIRE_INIT();
    if (ctx != NULL && ctx != PRIMARY_CTX)
        return CUDA_ERROR_INVALID_CONTEXT;
    t_current_ctx = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuCtxGetDevice(CUdevice *device)
{
    REQUIRE_INIT();
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    *device = 0;
    return CUDA_SUCCESS;
}

/* CUDA 13.0 ABI ("cuCtxGetDevice" @13000): explicit context, NULL = current. */
EXPORT CUresult CUDAAPI cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    REQUIRE_INIT();
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx != NULL && ctx != PRIMARY_CTX)
        return CUDA_ERROR_INVALID_CONTEXT;
    *device = 0;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuCtxSynchronize(void)
{
    REQUIRE_INIT();
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuCtxSynchronize_v2(CUcontext ctx)
{
    REQUIRE_INIT();
    if (ctx != NULL && ctx != PRIMARY_CTX)
        return CUDA_ERROR_INVALID_CONTEXT;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */

struct fake_stream {
    unsigned flags;
};

/* Caller holds g_lock. */
static int stream_valid_locked(CUstream s)
{
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
        return 1;
    rec_t *r = map_find(&g_obj, (uintptr_t)s);
    return r && r->kind == K_STREAM;
}

EXPORT CUresult CUDAAPI cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    REQUIRE_INIT();
    if (!phStream || (Flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
        return CUDA_ERROR_INVALID_VALUE;
    struct fake_stream *s = calloc(1, sizeof *s);
    rec_t *r = calloc(1, sizeof *r);
    if (!s || !r) {
        free(s);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    s->flags = Flags;
    r->key = (uintptr_t)s;
    r->kind = K_STREAM;
    r->obj = s;
    pthread_mutex_lock(&g_lock);
    int ok = map_insert(&g_obj, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(s);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *phStream = (CUstream)(void *)s;
    return CUDA_SUCCESS;
}

static CUresult stream_destroy(CUstream hStream)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_obj, (uintptr_t)hStream);
    if (!r || r->kind != K_STREAM) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    map_remove(&g_obj, (uintptr_t)hStream);
    pthread_mutex_unlock(&g_lock);
    free(r->obj);
    free(r);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuStreamDestroy_v2(CUstream hStream) { return stream_destroy(hStream); }
EXPORT CUresult CUDAAPI cuStreamDestroy(CUstream hStream) { return stream_destroy(hStream); }

static CUresult stream_sync(CUstream hStream)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    int ok = stream_valid_locked(hStream);
    pthread_mutex_unlock(&g_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EXPORT CUresult CUDAAPI cuStreamSynchronize(CUstream hStream) { return stream_sync(hStream); }
EXPORT CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream hStream) { return stream_sync(hStream); }

/* ------------------------------------------------------------------------ */
/* Device memory                                                            */

/* Caller holds g_lock. */
static void pool_release_cache(struct fake_pool *pool, unsigned long long keep)
{
    while (pool->cache && pool->cached > keep) {
        struct cblock *b = pool->cache;
        pool->cache = b->next;
        pool->cached -= b->size;
        arena_free(b->addr, b->size);
        free(b);
    }
}

/* An allocation of the pool is freed: its block stays reserved by the pool while the pool's
 * reserved bytes are within the release threshold, else it goes back to the arena. */
static void pool_drop_alloc(struct fake_pool *pool, uintptr_t addr, size_t bytes)
{
    pool->live--;
    struct cblock *b = NULL;
    if (!pool->destroyed && pool->threshold && pool->used + pool->cached <= pool->threshold)
        b = malloc(sizeof *b);
    pool->used -= bytes;
    if (b) {
        *b = (struct cblock){addr, bytes, pool->cache};
        pool->cache = b;
        pool->cached += bytes;
    } else {
        arena_free(addr, bytes);
    }
    if (pool->destroyed && pool->live == 0 && !pool->is_default) {
        pool_release_cache(pool, 0);
        free(pool);
    }
}

/* A cached block of at least asize bytes, taken out of the pool's cache (0: none). */
static uintptr_t pool_take_cached(struct fake_pool *pool, size_t *asize)
{
    for (struct cblock **pp = &pool->cache; *pp; pp = &(*pp)->next) {
        struct cblock *b = *pp;
        if (b->size >= *asize) {
            uintptr_t a = b->addr;
            *asize = b->size;
            *pp = b->next;
            pool->cached -= b->size;
            free(b);
            return a;
        }
    }
    return 0;
}

static CUresult dev_alloc(size_t size, int kind, struct fake_pool *pool, uintptr_t *out)
{
    size_t asize;
    if (g_hidden) {
        pthread_mutex_lock(&g_lock);
        uintptr_t hidden_addr;
        if (++g_allocs == 2 && arena_alloc(g_hidden, &hidden_addr))
            g_hidden = 0; /* taken; never given back */
        pthread_mutex_unlock(&g_lock);
    }
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (size > g_capacity || !round_up(size, ARENA_ALIGN, &asize))
        return CUDA_ERROR_OUT_OF_MEMORY;
    rec_t *r = calloc(1, sizeof *r);
    if (!r)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t addr;
    pthread_mutex_lock(&g_lock);
    if (pool && pool->destroyed) {
        pthread_mutex_unlock(&g_lock);
        free(r);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!(pool && (addr = pool_take_cached(pool, &asize))) && !arena_alloc(asize, &addr)) {
        pthread_mutex_unlock(&g_lock);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->key = addr;
    r->size = size;
    r->asize = asize;
    r->kind = kind;
    r->pool = pool;
    if (!map_insert(&g_dev, r)) {
        arena_free(addr, asize);
        pthread_mutex_unlock(&g_lock);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (pool) {
        pool->live++;
        pool->used += asize;
        if (pool->used > pool->used_high)
            pool->used_high = pool->used;
        if (pool->used + pool->cached > pool->reserved_high)
            pool->reserved_high = pool->used + pool->cached;
    }
    pthread_mutex_unlock(&g_lock);
    *out = addr;
    return CUDA_SUCCESS;
}

/* Frees a device-arena record of the given kind; err_code if unknown. */
static CUresult dev_free(uintptr_t addr, int kind, CUresult err_code)
{
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_dev, addr);
    if (!r || r->kind != kind) {
        pthread_mutex_unlock(&g_lock);
        return err_code;
    }
    map_remove(&g_dev, addr);
    if (r->pool)
        pool_drop_alloc(r->pool, r->key, r->asize);
    else
        arena_free(r->key, r->asize);
    pthread_mutex_unlock(&g_lock);
    free(r);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
    REQUIRE_INIT();
    if (!free_bytes || !total)
        return CUDA_ERROR_INVALID_VALUE;
    if (g_meminfo_needs_context && !t_current_ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&g_lock);
    *free_bytes = g_free_bytes;
    *total = g_capacity;
    pthread_mutex_unlock(&g_lock);
    return CUDA_SUCCESS;
}

/* VSP_FAKE_THREAD_CACHE: a cached block of exactly size bytes, handed out again (0: none). */
static uintptr_t thread_cache_take(size_t size)
{
    for (int i = 0; i < t_cached; i++) {
        if (!t_cache[i].live && t_cache[i].rec->size == size) {
            t_cache[i].live = 1;
            return t_cache[i].rec->key;
        }
    }
    return 0;
}

/* VSP_FAKE_THREAD_CACHE: a free of a block of the thread's cache (-1: not one of them; else the
 * result), or of a plain device allocation the cache takes in (0). */
static int thread_cache_give(uintptr_t addr, CUresult *result)
{
    for (int i = 0; i < t_cached; i++) {
        if (t_cache[i].rec->key == addr) {
            *result = t_cache[i].live ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; /* a double free */
            t_cache[i].live = 0;
            return 0;
        }
    }
    if (t_cached == THREAD_CACHE)
        return -1;
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_dev, addr);
    if (!r || r->kind != K_DEV || r->pool) {
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    map_remove(&g_dev, addr);
    pthread_mutex_unlock(&g_lock);
    t_cache[t_cached].rec = r;
    t_cache[t_cached].live = 0;
    t_cached++;
    *result = CUDA_SUCCESS;
    return 0;
}

EXPORT CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    REQUIRE_INIT();
    if (!dptr)
        return CUDA_ERROR_INVALID_VALUE;
    if (g_thread_cache) {
        uintptr_t c = thread_cache_take(bytesize);
        if (c) {
            *dptr = (CUdeviceptr)c;
            return CUDA_SUCCESS;
        }
    }
    uintptr_t a;
    CUresult r = dev_alloc(bytesize, K_DEV, NULL, &a);
    if (r == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)a;
    return r;
}

EXPORT CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                           size_t Height, unsigned int ElementSizeBytes)
{
    REQUIRE_INIT();
    if (!dptr || !pPitch || WidthInBytes == 0 || Height == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16)
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch, size;
    if (!round_up(WidthInBytes, ARENA_ALIGN, &pitch) || __builtin_mul_overflow(pitch, Height, &size))
        return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t a;
    CUresult r = dev_alloc(size, K_DEV, NULL, &a);
    if (r == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)a;
        *pPitch = pitch;
    }
    return r;
}

/* VSP_FAKE_BLOCK_FREE_SIZE: a free that blocks until released (see the header comment). */
static pthread_once_t g_block_once = PTHREAD_ONCE_INIT;
static size_t g_block_size;                 /* 0: off */
static pthread_mutex_t g_block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_block_cv = PTHREAD_COND_INITIALIZER;
static int g_block_released;
static int g_block_waiting;

static void block_parse(void)
{
    /* exact bytes (unlike VSP_FAKE_DEVICE_MEM, no rounding), optional K/M/G suffix */
    const char *v = getenv("VSP_FAKE_BLOCK_FREE_SIZE");
    if (!v || !*v)
        return;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (shift)
        end++;
    if (end == v || *end || *v == '-') {
        static const char msg[] = "fake libcuda: bad VSP_FAKE_BLOCK_FREE_SIZE, no free blocks\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        return;
    }
    g_block_size = (size_t)(n << shift);
}

static void maybe_block_free(uintptr_t addr)
{
    pthread_once(&g_block_once, block_parse);
    if (!g_block_size)
        return;
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_dev, addr);
    int hit = r && r->kind == K_DEV && r->size == g_block_size;
    pthread_mutex_unlock(&g_lock);
    if (!hit)
        return;
    pthread_mutex_lock(&g_block_lock);
    g_block_waiting++;
    while (!g_block_released)
        pthread_cond_wait(&g_block_cv, &g_block_lock);
    g_block_waiting--;
    pthread_mutex_unlock(&g_block_lock);
}

EXPORT void vsp_fake_release_blocked(void)
{
    pthread_mutex_lock(&g_block_lock);
    g_block_released = 1;
    pthread_cond_broadcast(&g_block_cv);
    pthread_mutex_unlock(&g_block_lock);
}

EXPORT int vsp_fake_blocked_frees(void)
{
    pthread_mutex_lock(&g_block_lock);
    int n = g_block_waiting;
    pthread_mutex_unlock(&g_block_lock);
    return n;
}

/* cuMemFree also frees managed memory, as the real driver does. */
EXPORT CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr)
{
    REQUIRE_INIT();
    if (dptr == 0)
        return CUDA_SUCCESS;
    CUresult cached;
    if (g_thread_cache && thread_cache_give((uintptr_t)dptr, &cached) == 0)
        return cached;
    maybe_block_free((uintptr_t)dptr);
    if (dev_free((uintptr_t)dptr, K_DEV, CUDA_ERROR_INVALID_VALUE) == CUDA_SUCCESS)
        return CUDA_SUCCESS;
    pthread_mutex_lock(&g_lock);
    rec_t *ext = map_find(&g_va, (uintptr_t)dptr);
    if (ext && ext->kind == K_EXTBUF) { /* an external memory buffer */
        map_remove(&g_va, (uintptr_t)dptr);
        pthread_mutex_unlock(&g_lock);
        munmap((void *)ext->key, ext->size);
        free(ext);
        return CUDA_SUCCESS;
    }
    rec_t *r = map_find(&g_host, (uintptr_t)dptr);
    if (!r || r->kind != K_MANAGED) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    map_remove(&g_host, (uintptr_t)dptr);
    pthread_mutex_unlock(&g_lock);
    free((void *)r->key);
    free(r);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    REQUIRE_INIT();
    uintptr_t a = (uintptr_t)dptr, base = 0;
    size_t size = 0;
    int found = 0;
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find_containing(&g_dev, a, 1u << K_DEV);
    if (!r)
        r = map_find_containing(&g_host, a, 1u << K_MANAGED);
    if (!r)
        r = map_find_containing(&g_va, a, (1u << K_IPC) | (1u << K_EXTBUF)); /* IPC, external buffers */
    if (r) {
        base = r->key;
        size = r->size;
        found = 1;
    } else {
        rec_t *va = map_find_containing(&g_va, a, 1u << K_VA);
        for (struct vmapping *m = va ? va->maps : NULL; m; m = m->next) {
            if (a >= m->va && a - m->va < m->size) {
                base = m->va;
                size = m->size;
                found = 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (!found)
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = (CUdeviceptr)base;
    if (psize)
        *psize = size;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Host memory                                                              */

static CUresult host_alloc(void **out, size_t size, int kind, unsigned flags)
{
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    size_t asize;
    if (!round_up(size, HOST_ALIGN, &asize))
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = NULL;
    if (posix_memalign(&p, HOST_ALIGN, asize) != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    rec_t *r = calloc(1, sizeof *r);
    if (!r) {
        free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->key = (uintptr_t)p;
    r->size = size;
    r->kind = kind;
    r->flags = flags;
    pthread_mutex_lock(&g_lock);
    int ok = map_insert(&g_host, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(p);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = p;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    REQUIRE_INIT();
    if (!pp)
        return CUDA_ERROR_INVALID_VALUE;
    return host_alloc(pp, bytesize, K_PINNED, 0);
}

EXPORT CUresult CUDAAPI cuMemAllocHost(void **pp, unsigned int bytesize)
{
    REQUIRE_INIT();
    if (!pp)
        return CUDA_ERROR_INVALID_VALUE;
    return host_alloc(pp, bytesize, K_PINNED, 0);
}

EXPORT CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    REQUIRE_INIT();
    if (!pp || (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                                    CU_MEMHOSTALLOC_WRITECOMBINED)))
        return CUDA_ERROR_INVALID_VALUE;
    return host_alloc(pp, bytesize, K_PINNED, Flags);
}

EXPORT CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    REQUIRE_INIT();
    if (!dptr || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    void *p;
    CUresult r = host_alloc(&p, bytesize, K_MANAGED, flags);
    if (r == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)(uintptr_t)p;
    return r;
}

EXPORT CUresult CUDAAPI cuMemFreeHost(void *p)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_host, (uintptr_t)p);
    if (!p || !r || r->kind != K_PINNED) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    map_remove(&g_host, (uintptr_t)p);
    pthread_mutex_unlock(&g_lock);
    free(p);
    free(r);
    return CUDA_SUCCESS;
}

static CUresult host_register(void *p, size_t bytesize, unsigned int Flags)
{
    REQUIRE_INIT();
    if (!p || bytesize == 0 ||
        (Flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                             CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY)))
        return CUDA_ERROR_INVALID_VALUE;
    if ((uintptr_t)p > UINTPTR_MAX - bytesize)
        return CUDA_ERROR_INVALID_VALUE;
    rec_t *r = calloc(1, sizeof *r);
    if (!r)
        return CUDA_ERROR_OUT_OF_MEMORY;
    r->key = (uintptr_t)p;
    r->size = bytesize;
    r->kind = K_REG;
    r->flags = Flags;
    pthread_mutex_lock(&g_lock);
    if (map_overlaps(&g_reg, r->key, bytesize)) {
        pthread_mutex_unlock(&g_lock);
        free(r);
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    }
    int ok = map_insert(&g_reg, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    return host_register(p, bytesize, Flags);
}

EXPORT CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags)
{
    return host_register(p, bytesize, Flags);
}

EXPORT CUresult CUDAAPI cuMemHostUnregister(void *p)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = p ? map_remove(&g_reg, (uintptr_t)p) : NULL;
    pthread_mutex_unlock(&g_lock);
    if (!r)
        return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    free(r);
    return CUDA_SUCCESS;
}

/* Unified addressing: the device pointer is the host pointer. */
EXPORT CUresult CUDAAPI cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    REQUIRE_INIT();
    if (!pdptr || !p || Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_lock);
    int ok = map_find_containing(&g_host, (uintptr_t)p, 1u << K_PINNED) != NULL ||
             map_find_containing(&g_reg, (uintptr_t)p, 1u << K_REG) != NULL;
    pthread_mutex_unlock(&g_lock);
    if (!ok)
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Stream-ordered allocation and pools                                      */

EXPORT CUresult CUDAAPI cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    REQUIRE_INIT();
    if (!pool_out)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *pool_out = (CUmemoryPool)(void *)&g_default_pool;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
    REQUIRE_INIT();
    if (!pool || !poolProps || poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    int host = poolProps->location.type == CU_MEM_LOCATION_TYPE_HOST ||
               poolProps->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
               poolProps->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT;
    if (!host && poolProps->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (!host && poolProps->location.id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    struct fake_pool *p = calloc(1, sizeof *p);
    if (p)
        p->host = host;
    rec_t *r = calloc(1, sizeof *r);
    if (!p || !r) {
        free(p);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->key = (uintptr_t)p;
    r->kind = K_POOL;
    r->obj = p;
    pthread_mutex_lock(&g_lock);
    int ok = map_insert(&g_obj, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(p);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pool = (CUmemoryPool)(void *)p;
    return CUDA_SUCCESS;
}

/* Like the real driver, destroying a pool with outstanding allocations is
 * allowed; they stay valid and the pool goes away with the last of them. */
EXPORT CUresult CUDAAPI cuMemPoolDestroy(CUmemoryPool pool)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_obj, (uintptr_t)pool);
    if (!r || r->kind != K_POOL) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    map_remove(&g_obj, (uintptr_t)pool);
    struct fake_pool *p = r->obj;
    p->destroyed = 1;
    pool_release_cache(p, 0);
    if (g_cur_pool == p)
        g_cur_pool = &g_default_pool;
    if (p->live == 0)
        free(p);
    pthread_mutex_unlock(&g_lock);
    free(r);
    return CUDA_SUCCESS;
}

/* Is pool one the driver knows (a default pool or a live created one)? Under g_lock. */
static int pool_valid_locked(struct fake_pool *pool)
{
    if (pool == &g_default_pool || pool == &g_host_default_pool)
        return 1;
    rec_t *r = map_find(&g_obj, (uintptr_t)pool);
    return r && r->kind == K_POOL;
}

/* The current pool of a device (cuDeviceSetMemPool, or CUDA 13's cuMemSetMemPool with a device
 * location); it may be host-located: then cuMemAllocAsync returns pinned host memory. */
EXPORT CUresult CUDAAPI cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    REQUIRE_INIT();
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_lock);
    int ok = pool_valid_locked((struct fake_pool *)(void *)pool);
    if (ok)
        g_cur_pool = (struct fake_pool *)(void *)pool;
    pthread_mutex_unlock(&g_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult CUDAAPI cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    REQUIRE_INIT();
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_lock);
    *pool = (CUmemoryPool)(void *)g_cur_pool;
    pthread_mutex_unlock(&g_lock);
    return CUDA_SUCCESS;
}

static int host_location(const CUmemLocation *l)
{
    return l->type == CU_MEM_LOCATION_TYPE_HOST || l->type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
           l->type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT;
}

EXPORT CUresult CUDAAPI cuMemGetDefaultMemPool(CUmemoryPool *pool_out, CUmemLocation *location, CUmemAllocationType type)
{
    REQUIRE_INIT();
    if (!pool_out || !location || type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (host_location(location))
        *pool_out = (CUmemoryPool)(void *)&g_host_default_pool;
    else if (location->type == CU_MEM_LOCATION_TYPE_DEVICE && location->id == 0)
        *pool_out = (CUmemoryPool)(void *)&g_default_pool;
    else
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* Only the device location has a current pool for cuMemAllocAsync in the fake; setting the host
 * location's is accepted and changes nothing else. */
EXPORT CUresult CUDAAPI cuMemSetMemPool(CUmemLocation *location, CUmemAllocationType type, CUmemoryPool pool)
{
    REQUIRE_INIT();
    if (!location || type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (host_location(location)) {
        pthread_mutex_lock(&g_lock);
        int ok = pool_valid_locked((struct fake_pool *)(void *)pool);
        pthread_mutex_unlock(&g_lock);
        return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    }
    if (location->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    return cuDeviceSetMemPool(location->id, pool);
}

EXPORT CUresult CUDAAPI cuMemGetMemPool(CUmemoryPool *pool_out, CUmemLocation *location, CUmemAllocationType type)
{
    REQUIRE_INIT();
    if (!location || type != CU_MEM_ALLOCATION_TYPE_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    if (host_location(location))
        return cuMemGetDefaultMemPool(pool_out, location, type);
    return cuDeviceGetMemPool(pool_out, location->id);
}

/* Reserved memory equals used memory (the fake caches nothing); the highs reset when set to 0. */
EXPORT CUresult CUDAAPI cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    REQUIRE_INIT();
    struct fake_pool *p = (struct fake_pool *)(void *)pool;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_lock);
    int ok = pool_valid_locked(p);
    cuuint64_t v = 0;
    if (ok) {
        switch (attr) {
        case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: v = p->threshold; break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: v = p->used + p->cached; break;
        case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: v = p->used; break;
        case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: v = p->reserved_high > p->used_high ? p->reserved_high : p->used_high; break;
        case CU_MEMPOOL_ATTR_USED_MEM_HIGH: v = p->used_high; break;
        default: ok = -1; break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (ok <= 0)
        return ok < 0 ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
    memcpy(value, &v, sizeof v);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    REQUIRE_INIT();
    struct fake_pool *p = (struct fake_pool *)(void *)pool;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    cuuint64_t v;
    memcpy(&v, value, sizeof v);
    pthread_mutex_lock(&g_lock);
    int ok = pool_valid_locked(p);
    if (ok && attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
        p->threshold = v;
    else if (ok && attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH && v == 0)
        p->used_high = p->used;
    else if (ok && attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH && v == 0)
        p->reserved_high = p->used + p->cached;
    else if (ok)
        ok = -1;
    pthread_mutex_unlock(&g_lock);
    return ok > 0 ? CUDA_SUCCESS : ok < 0 ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult CUDAAPI cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    int ok = pool_valid_locked((struct fake_pool *)(void *)pool);
    if (ok)
        pool_release_cache((struct fake_pool *)(void *)pool, minBytesToKeep);
    pthread_mutex_unlock(&g_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static CUresult alloc_async(CUdeviceptr *dptr, size_t bytesize, struct fake_pool *pool, CUstream hStream)
{
    REQUIRE_INIT();
    if (!dptr)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_lock);
    if (!pool)
        pool = g_cur_pool; /* cuMemAllocAsync: the device's current pool */
    int stream_ok = stream_valid_locked(hStream);
    int pool_ok = pool_valid_locked(pool);
    pthread_mutex_unlock(&g_lock);
    if (!pool_ok)
        return CUDA_ERROR_INVALID_VALUE;
    if (!stream_ok)
        return CUDA_ERROR_INVALID_HANDLE;
    uintptr_t a;
    CUresult r = dev_alloc(bytesize, K_DEV, pool, &a);
    if (r == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)a;
    return r;
}

EXPORT CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async(dptr, bytesize, NULL, hStream);
}

EXPORT CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_async(dptr, bytesize, NULL, hStream);
}

EXPORT CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                CUstream hStream)
{
    return alloc_async(dptr, bytesize, (struct fake_pool *)(void *)pool, hStream);
}

EXPORT CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                     CUstream hStream)
{
    return alloc_async(dptr, bytesize, (struct fake_pool *)(void *)pool, hStream);
}

/* Frees any device allocation (stream-ordered or not) at once. */
static CUresult free_async(CUdeviceptr dptr, CUstream hStream)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    int stream_ok = stream_valid_locked(hStream);
    pthread_mutex_unlock(&g_lock);
    if (!stream_ok)
        return CUDA_ERROR_INVALID_HANDLE;
    if (dptr == 0)
        return CUDA_ERROR_INVALID_VALUE;
    return dev_free((uintptr_t)dptr, K_DEV, CUDA_ERROR_INVALID_VALUE);
}

EXPORT CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) { return free_async(dptr, hStream); }
EXPORT CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) { return free_async(dptr, hStream); }

/* ------------------------------------------------------------------------ */
/* Virtual memory management                                                */

/* Device 0, or (CUDA 12.2+) pinned host memory, which the fake takes from the same arena. */
static int prop_ok(const CUmemAllocationProp *prop)
{
    return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
           ((prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE && prop->location.id == 0) ||
            prop->location.type == CU_MEM_LOCATION_TYPE_HOST || prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
            prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT);
}

EXPORT CUresult CUDAAPI cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                                      CUmemAllocationGranularity_flags option)
{
    REQUIRE_INIT();
    if (!granularity || !prop_ok(prop))
        return CUDA_ERROR_INVALID_VALUE;
    if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = VMM_GRANULARITY;
    return CUDA_SUCCESS;
}

/* The handle is the arena address of the physical block. */
EXPORT CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                    const CUmemAllocationProp *prop, unsigned long long flags)
{
    REQUIRE_INIT();
    if (!handle || !prop_ok(prop) || flags != 0 || size == 0 || size % VMM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t a;
    CUresult r = dev_alloc(size, K_PHYS, NULL, &a);
    if (r == CUDA_SUCCESS)
        *handle = (CUmemGenericAllocationHandle)a;
    return r;
}

/* Caller holds g_lock; frees the physical block once released and unmapped. */
static void phys_maybe_free(rec_t *phys)
{
    if (phys->released && phys->map_count == 0) {
        map_remove(&g_dev, phys->key);
        arena_free(phys->key, phys->asize);
        free(phys);
    }
}

EXPORT CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_dev, (uintptr_t)handle);
    if (!r || r->kind != K_PHYS || r->released) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    r->released = 1;
    phys_maybe_free(r);
    pthread_mutex_unlock(&g_lock);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                            unsigned long long flags)
{
    REQUIRE_INIT();
    if (!ptr || size == 0 || size % VMM_GRANULARITY || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (alignment == 0)
        alignment = VMM_GRANULARITY;
    if (alignment & (alignment - 1))
        return CUDA_ERROR_INVALID_VALUE;
    if (alignment < (size_t)sysconf(_SC_PAGESIZE))
        alignment = (size_t)sysconf(_SC_PAGESIZE);
    size_t span;
    if (__builtin_add_overflow(size, alignment, &span))
        return CUDA_ERROR_OUT_OF_MEMORY;
    rec_t *r = calloc(1, sizeof *r);
    if (!r)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *hint = (addr && addr % alignment == 0) ? (void *)(uintptr_t)addr : NULL;
    void *m = MAP_FAILED;
    if (hint) {
        /* Try the requested address exactly first (never MAP_FIXED). */
        m = mmap(hint, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED && m != hint) {
            munmap(m, size);
            m = MAP_FAILED;
        }
    }
    uintptr_t start;
    if (m != MAP_FAILED) {
        start = (uintptr_t)m;
    } else {
        m = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            free(r);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        uintptr_t b = (uintptr_t)m;
        start = (b + alignment - 1) & ~(uintptr_t)(alignment - 1);
        if (start > b)
            munmap(m, start - b);
        if (b + span > start + size)
            munmap((void *)(start + size), b + span - (start + size));
    }
    r->key = start;
    r->size = size;
    r->kind = K_VA;
    pthread_mutex_lock(&g_lock);
    int ok = map_insert(&g_va, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        munmap((void *)start, size);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *ptr = (CUdeviceptr)start;
    return CUDA_SUCCESS;
}

/* Caller holds g_lock. */
static void drop_mapping(struct vmapping *m)
{
    m->phys->map_count--;
    phys_maybe_free(m->phys);
    free(m);
}

/* Mappings still inside the range are dropped along with it. */
EXPORT CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_va, (uintptr_t)ptr);
    if (!r || r->size != size) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    map_remove(&g_va, (uintptr_t)ptr);
    while (r->maps) {
        struct vmapping *m = r->maps;
        r->maps = m->next;
        drop_mapping(m);
    }
    pthread_mutex_unlock(&g_lock);
    munmap((void *)r->key, r->size);
    free(r);
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Graph memory nodes: a graph is an opaque object; an allocation node takes  */
/* its memory from the arena when it is added (the real driver does at       */
/* launch), a free node gives it back.                                        */

struct fake_graph {
    unsigned flags;
    unsigned nodes;
    char node[64]; /* node handles point in here; never dereferenced by callers */
};

EXPORT CUresult CUDAAPI cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    REQUIRE_INIT();
    if (!phGraph || flags)
        return CUDA_ERROR_INVALID_VALUE;
    struct fake_graph *g = calloc(1, sizeof *g);
    if (!g)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraph = (CUgraph)(void *)g;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuGraphDestroy(CUgraph hGraph)
{
    REQUIRE_INIT();
    if (!hGraph)
        return CUDA_ERROR_INVALID_VALUE;
    free(hGraph);
    return CUDA_SUCCESS;
}

static CUgraphNode new_node(struct fake_graph *g)
{
    return (CUgraphNode)(void *)&g->node[g->nodes++ % sizeof g->node];
}

EXPORT CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                               size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    REQUIRE_INIT();
    if (!phGraphNode || !hGraph || !nodeParams || (numDependencies && !dependencies) || nodeParams->bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t a;
    CUresult r = dev_alloc(nodeParams->bytesize, K_DEV, NULL, &a);
    if (r != CUDA_SUCCESS)
        return r;
    nodeParams->dptr = (CUdeviceptr)a;
    *phGraphNode = new_node((struct fake_graph *)(void *)hGraph);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                              size_t numDependencies, CUdeviceptr dptr)
{
    REQUIRE_INIT();
    if (!phGraphNode || !hGraph || (numDependencies && !dependencies))
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = dev_free((uintptr_t)dptr, K_DEV, CUDA_ERROR_INVALID_VALUE);
    if (r == CUDA_SUCCESS)
        *phGraphNode = new_node((struct fake_graph *)(void *)hGraph);
    return r;
}

/* ------------------------------------------------------------------------ */
/* IPC: a handle names a device allocation (address and size); opening it   */
/* maps a new PROT_NONE range of that size, as another process would see.    */

#define IPC_MAGIC "vspIPC!"

EXPORT CUresult CUDAAPI cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    REQUIRE_INIT();
    if (!pHandle)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_dev, (uintptr_t)dptr);
    size_t size = r ? r->size : 0;
    pthread_mutex_unlock(&g_lock);
    if (!size)
        return CUDA_ERROR_INVALID_VALUE;
    memset(pHandle, 0, sizeof *pHandle);
    uint64_t a = (uint64_t)dptr, n = size;
    memcpy(pHandle->reserved, IPC_MAGIC, 8);
    memcpy(pHandle->reserved + 8, &a, 8);
    memcpy(pHandle->reserved + 16, &n, 8);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    REQUIRE_INIT();
    uint64_t n;
    if (!pdptr || memcmp(handle.reserved, IPC_MAGIC, 8) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(&n, handle.reserved + 16, 8);
    rec_t *r = calloc(1, sizeof *r);
    void *m = r ? mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : MAP_FAILED;
    if (m == MAP_FAILED) {
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->key = (uintptr_t)m;
    r->size = n;
    r->kind = K_IPC;
    pthread_mutex_lock(&g_lock);
    int ok = map_insert(&g_va, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        munmap(m, n);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pdptr = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    REQUIRE_INIT();
    pthread_mutex_lock(&g_lock);
    rec_t *r = map_find(&g_va, (uintptr_t)dptr);
    if (!r || r->kind != K_IPC) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    map_remove(&g_va, (uintptr_t)dptr);
    pthread_mutex_unlock(&g_lock);
    munmap((void *)r->key, r->size);
    free(r);
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* External memory (another API's allocation, by OS handle): an import is an  */
/* object with a size; a mapped buffer is a new PROT_NONE range, freed with   */
/* cuMemFree like the real driver's. Shareable handles of cuMemCreate         */
/* allocations import as a new handle to the same physical allocation.        */

struct fake_extmem {
    unsigned long long size;
};

EXPORT CUresult CUDAAPI cuImportExternalMemory(CUexternalMemory *extMem_out, const CUDA_EXTERNAL_MEMORY_HANDLE_DESC *desc)
{
    REQUIRE_INIT();
    if (!extMem_out || !desc || desc->size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    struct fake_extmem *e = calloc(1, sizeof *e);
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->size = desc->size;
    *extMem_out = (CUexternalMemory)(void *)e;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuExternalMemoryGetMappedBuffer(CUdeviceptr *devPtr, CUexternalMemory extMem,
                                                        const CUDA_EXTERNAL_MEMORY_BUFFER_DESC *bufferDesc)
{
    REQUIRE_INIT();
    struct fake_extmem *e = (struct fake_extmem *)(void *)extMem;
    if (!devPtr || !e || !bufferDesc || bufferDesc->size == 0 || bufferDesc->offset + bufferDesc->size > e->size)
        return CUDA_ERROR_INVALID_VALUE;
    /* an arena allocation of kind K_DEV would count against free memory: the buffer is another
     * API's memory, so it is a reserved range of its own (freed by cuMemFree, see dev_free) */
    rec_t *r = calloc(1, sizeof *r);
    void *m = r ? mmap(NULL, bufferDesc->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                : MAP_FAILED;
    if (m == MAP_FAILED) {
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->key = (uintptr_t)m;
    r->size = bufferDesc->size;
    r->kind = K_EXTBUF;
    pthread_mutex_lock(&g_lock);
    int ok = map_insert(&g_va, r);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        munmap(m, bufferDesc->size);
        free(r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *devPtr = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDestroyExternalMemory(CUexternalMemory extMem)
{
    REQUIRE_INIT();
    if (!extMem)
        return CUDA_ERROR_INVALID_VALUE;
    free(extMem);
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                 unsigned long long flags)
{
    REQUIRE_INIT();
    uintptr_t a = (uintptr_t)ptr;
    if (size == 0 || offset != 0 || flags != 0 || a % VMM_GRANULARITY || size % VMM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    struct vmapping *m = calloc(1, sizeof *m);
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&g_lock);
    CUresult res = CUDA_SUCCESS;
    rec_t *phys = map_find(&g_dev, (uintptr_t)handle);
    rec_t *va = map_find_containing(&g_va, a, 1u << K_VA);
    if (!phys || phys->kind != K_PHYS || phys->released || size > phys->size) {
        res = CUDA_ERROR_INVALID_VALUE;
    } else if (!va || size > va->size - (a - va->key)) {
        res = CUDA_ERROR_INVALID_VALUE;
    } else {
        for (struct vmapping *o = va->maps; o; o = o->next)
            if (a < o->va + o->size && o->va < a + size)
                res = CUDA_ERROR_INVALID_VALUE;
    }
    if (res == CUDA_SUCCESS) {
        m->va = a;
        m->size = size;
        m->phys = phys;
        m->next = va->maps;
        va->maps = m;
        phys->map_count++;
        m = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    free(m);
    return res;
}

/* Unmaps every mapping inside [ptr, ptr+size); partial overlaps are refused. */
EXPORT CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    REQUIRE_INIT();
    uintptr_t a = (uintptr_t)ptr;
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_lock);
    rec_t *va = map_find_containing(&g_va, a, 1u << K_VA);
    CUresult res = CUDA_SUCCESS;
    int n = 0;
    if (!va || size > va->size - (a - va->key)) {
        res = CUDA_ERROR_INVALID_VALUE;
    } else {
        for (struct vmapping *o = va->maps; o; o = o->next) {
            if (a < o->va + o->size && o->va < a + size) {
                if (o->va < a || o->va + o->size > a + size)
                    res = CUDA_ERROR_INVALID_VALUE;
                n++;
            }
        }
        if (n == 0)
            res = CUDA_ERROR_INVALID_VALUE;
    }
    if (res == CUDA_SUCCESS) {
        struct vmapping **pp = &va->maps;
        while (*pp) {
            struct vmapping *o = *pp;
            if (o->va >= a && o->va + o->size <= a + size) {
                *pp = o->next;
                drop_mapping(o);
            } else {
                pp = &o->next;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return res;
}

/* Accepted when the whole range is mapped; protections are not changed. */
EXPORT CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    REQUIRE_INIT();
    uintptr_t a = (uintptr_t)ptr;
    if (size == 0 || !desc || count == 0)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++)
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || desc[i].location.id != 0)
            return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_lock);
    rec_t *va = map_find_containing(&g_va, a, 1u << K_VA);
    size_t covered = 0;
    if (va && size <= va->size - (a - va->key)) {
        for (struct vmapping *o = va->maps; o; o = o->next) {
            uintptr_t lo = o->va > a ? o->va : a;
            uintptr_t hi = o->va + o->size < a + size ? o->va + o->size : a + size;
            if (hi > lo)
                covered += hi - lo;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return covered == size ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ------------------------------------------------------------------------ */
/* Arrays                                                                   */

/* Bytes per element, 0 when the format is not modelled. */
static size_t element_bytes(CUarray_format f, unsigned channels)
{
    size_t per_channel;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
        per_channel = 1;
        break;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
        per_channel = 2;
        break;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
        per_channel = 4;
        break;
    case CU_AD_FORMAT_UNORM_INT8X1: case CU_AD_FORMAT_SNORM_INT8X1: return 1;
    case CU_AD_FORMAT_UNORM_INT8X2: case CU_AD_FORMAT_SNORM_INT8X2: return 2;
    case CU_AD_FORMAT_UNORM_INT8X4: case CU_AD_FORMAT_SNORM_INT8X4: return 4;
    case CU_AD_FORMAT_UNORM_INT16X1: case CU_AD_FORMAT_SNORM_INT16X1: return 2;
    case CU_AD_FORMAT_UNORM_INT16X2: case CU_AD_FORMAT_SNORM_INT16X2: return 4;
    case CU_AD_FORMAT_UNORM_INT16X4: case CU_AD_FORMAT_SNORM_INT16X4: return 8;
    case CU_AD_FORMAT_UNORM_INT_101010_2: return 4;
    default:
        return 0;
    }
    if (channels != 1 && channels != 2 && channels != 4)
        return 0;
    return per_channel * channels;
}

/* elem * w * max(h,1) * max(d,1), 0 on overflow. */
static size_t extent_bytes(size_t elem, size_t w, size_t h, size_t d)
{
    size_t s;
    if (__builtin_mul_overflow(elem, w, &s) || __builtin_mul_overflow(s, h ? h : 1, &s) ||
        __builtin_mul_overflow(s, d ? d : 1, &s))
        return 0;
    return s;
}

static CUresult array_create(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    if (!pHandle || !d || d->Width == 0)
        return CUDA_ERROR_INVALID_VALUE;
    size_t elem = element_bytes(d->Format, d->NumChannels);
    if (elem == 0)
        return (d->NumChannels == 1 || d->NumChannels == 2 || d->NumChannels == 4) ? CUDA_ERROR_NOT_SUPPORTED
                                                                                    : CUDA_ERROR_INVALID_VALUE;
    size_t bytes = extent_bytes(elem, d->Width, d->Height, d->Depth);
    if (bytes == 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uintptr_t a;
    CUresult r = dev_alloc(bytes, K_ARRAY, NULL, &a);
    if (r == CUDA_SUCCESS)
        *pHandle = (CUarray)(void *)a;
    return r;
}

EXPORT CUresult CUDAAPI cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray)
{
    REQUIRE_INIT();
    if (!pAllocateArray)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_ARRAY3D_DESCRIPTOR d = {
        .Width = pAllocateArray->Width,
        .Height = pAllocateArray->Height,
        .Depth = 0,
        .Format = pAllocateArray->Format,
        .NumChannels = pAllocateArray->NumChannels,
        .Flags = 0,
    };
    return array_create(pHandle, &d);
}

EXPORT CUresult CUDAAPI cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray)
{
    REQUIRE_INIT();
    return array_create(pHandle, pAllocateArray);
}

EXPORT CUresult CUDAAPI cuArrayDestroy(CUarray hArray)
{
    REQUIRE_INIT();
    return dev_free((uintptr_t)(void *)hArray, K_ARRAY, CUDA_ERROR_INVALID_HANDLE);
}

/* Sum over levels; levels are clamped to [1, 1 + floor(log2(max extent))].
 * Layer and cubemap-face counts (Depth with those flags) do not shrink. */
EXPORT CUresult CUDAAPI cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                               unsigned int numMipmapLevels)
{
    REQUIRE_INIT();
    if (!pHandle || !d || d->Width == 0)
        return CUDA_ERROR_INVALID_VALUE;
    size_t elem = element_bytes(d->Format, d->NumChannels);
    if (elem == 0)
        return (d->NumChannels == 1 || d->NumChannels == 2 || d->NumChannels == 4) ? CUDA_ERROR_NOT_SUPPORTED
                                                                                    : CUDA_ERROR_INVALID_VALUE;
    int depth_shrinks = !(d->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP));
    size_t maxdim = d->Width;
    if (d->Height > maxdim)
        maxdim = d->Height;
    if (depth_shrinks && d->Depth > maxdim)
        maxdim = d->Depth;
    unsigned max_levels = 1;
    while ((maxdim >> max_levels) > 0)
        max_levels++;
    unsigned levels = numMipmapLevels == 0 ? 1 : numMipmapLevels;
    if (levels > max_levels)
        levels = max_levels;
    size_t total = 0;
    for (unsigned l = 0; l < levels; l++) {
        size_t w = d->Width >> l ? d->Width >> l : 1;
        size_t h = d->Height == 0 ? 0 : (d->Height >> l ? d->Height >> l : 1);
        size_t dd = d->Depth == 0 ? 0 : !depth_shrinks ? d->Depth : (d->Depth >> l ? d->Depth >> l : 1);
        size_t b = extent_bytes(elem, w, h, dd);
        if (b == 0 || __builtin_add_overflow(total, b, &total))
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    uintptr_t a;
    CUresult r = dev_alloc(total, K_MIPMAP, NULL, &a);
    if (r == CUDA_SUCCESS)
        *pHandle = (CUmipmappedArray)(void *)a;
    return r;
}

EXPORT CUresult CUDAAPI cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray)
{
    REQUIRE_INIT();
    return dev_free((uintptr_t)(void *)hMipmappedArray, K_MIPMAP, CUDA_ERROR_INVALID_HANDLE);
}

/* ------------------------------------------------------------------------ */
/* cuGetProcAddress                                                         */

EXPORT CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                            CUdriverProcAddressQueryResult *symbolStatus);

/* Table entries use these local aliases: their addresses are resolved inside
 * this library, never through the GOT, so an LD_PRELOADed library exporting
 * the same names cannot make the table hand out its own functions. */
#define LOCAL_ALIAS(fn) static __typeof__(fn) local_##fn __attribute__((alias(#fn)));
#define ALL_EXPORTS(X)                                                         \
    X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString)      \
    X(cuGetExportTable) X(cuGetProcAddress) X(cuGetProcAddress_v2)             \
    X(cuDeviceGet) X(cuDeviceGetCount) X(cuDeviceGetName) X(cuDeviceTotalMem_v2) \
    X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)                   \
    X(cuDevicePrimaryCtxRelease_v2) X(cuDevicePrimaryCtxReset)                 \
    X(cuDevicePrimaryCtxReset_v2) X(cuCtxGetCurrent) X(cuCtxSetCurrent)        \
    X(cuCtxGetDevice) X(cuCtxGetDevice_v2) X(cuCtxSynchronize)                 \
    X(cuCtxSynchronize_v2) X(cuStreamCreate) X(cuStreamDestroy)                \
    X(cuStreamDestroy_v2) X(cuStreamSynchronize) X(cuStreamSynchronize_ptsz)   \
    X(cuMemGetInfo_v2) X(cuMemAlloc_v2) X(cuMemAllocPitch_v2) X(cuMemFree_v2)  \
    X(cuMemGetAddressRange_v2) X(cuMemAllocManaged) X(cuMemAllocHost_v2) X(cuMemAllocHost)       \
    X(cuMemHostAlloc) X(cuMemFreeHost) X(cuMemHostRegister)                    \
    X(cuMemHostRegister_v2) X(cuMemHostUnregister)                             \
    X(cuMemHostGetDevicePointer_v2) X(cuMemAllocAsync) X(cuMemAllocAsync_ptsz) \
    X(cuMemAllocFromPoolAsync) X(cuMemAllocFromPoolAsync_ptsz)                 \
    X(cuMemFreeAsync) X(cuMemFreeAsync_ptsz) X(cuDeviceGetDefaultMemPool)      \
    X(cuMemPoolCreate) X(cuMemPoolDestroy) X(cuMemCreate) X(cuMemRelease)      \
    X(cuDeviceSetMemPool) X(cuDeviceGetMemPool) X(cuMemGetDefaultMemPool)      \
    X(cuMemSetMemPool) X(cuMemGetMemPool) X(cuGraphCreate) X(cuGraphDestroy)   \
    X(cuGraphAddMemAllocNode) X(cuGraphAddMemFreeNode) X(cuIpcGetMemHandle)    \
    X(cuIpcOpenMemHandle_v2) X(cuIpcCloseMemHandle) X(cuImportExternalMemory)  \
    X(cuExternalMemoryGetMappedBuffer) X(cuDestroyExternalMemory)              \
    X(cuMemPoolGetAttribute) X(cuMemPoolSetAttribute) X(cuMemPoolTrimTo)      \
    X(cuMemAddressReserve) X(cuMemAddressFree) X(cuMemMap) X(cuMemUnmap)       \
    X(cuMemSetAccess) X(cuMemGetAllocationGranularity) X(cuArrayCreate_v2)     \
    X(cuArray3DCreate_v2) X(cuArrayDestroy) X(cuMipmappedArrayCreate)          \
    X(cuMipmappedArrayDestroy)
ALL_EXPORTS(LOCAL_ALIAS)

/* {base name, version introduced, function, ptsz function}.  Entries of one
 * name are adjacent and in ascending version order.  ENT also checks the
 * function's type against NVIDIA's PFN_<name>_v<version> typedef where
 * cudaTypedefs.h provides one; OLD does not (those typedefs are internal). */
typedef struct {
    const char *name;
    int version;
    void *fn;
    void *fn_ptsz;
} gpa_entry_t;

#define PFN_CHECK(pfn_type, fn)                                                  \
    _Static_assert(__builtin_types_compatible_p(pfn_type, __typeof__(&fn)),      \
                   #fn " does not match " #pfn_type);

#define GPA_TABLE(ENT, ENTP, OLD)                                              \
    ENT(cuInit, 2000, cuInit)                                                  \
    ENT(cuDriverGetVersion, 2020, cuDriverGetVersion)                          \
    ENT(cuGetErrorName, 6000, cuGetErrorName)                                  \
    ENT(cuGetErrorString, 6000, cuGetErrorString)                              \
    ENT(cuGetExportTable, 3000, cuGetExportTable)                              \
    ENT(cuGetProcAddress, 11030, cuGetProcAddress)                             \
    ENT(cuGetProcAddress, 12000, cuGetProcAddress_v2)                          \
    ENT(cuDeviceGet, 2000, cuDeviceGet)                                        \
    ENT(cuDeviceGetCount, 2000, cuDeviceGetCount)                              \
    ENT(cuDeviceGetName, 2000, cuDeviceGetName)                                \
    ENT(cuDeviceTotalMem, 3020, cuDeviceTotalMem_v2)                           \
    ENT(cuDevicePrimaryCtxRetain, 7000, cuDevicePrimaryCtxRetain)              \
    OLD(cuDevicePrimaryCtxRelease, 7000, cuDevicePrimaryCtxRelease)            \
    ENT(cuDevicePrimaryCtxRelease, 11000, cuDevicePrimaryCtxRelease_v2)        \
    OLD(cuDevicePrimaryCtxReset, 7000, cuDevicePrimaryCtxReset)                \
    ENT(cuDevicePrimaryCtxReset, 11000, cuDevicePrimaryCtxReset_v2)            \
    ENT(cuCtxGetCurrent, 4000, cuCtxGetCurrent)                                \
    ENT(cuCtxSetCurrent, 4000, cuCtxSetCurrent)                                \
    ENT(cuCtxGetDevice, 2000, cuCtxGetDevice)                                  \
    ENT(cuCtxGetDevice, 13000, cuCtxGetDevice_v2)                              \
    ENT(cuCtxSynchronize, 2000, cuCtxSynchronize)                              \
    ENT(cuCtxSynchronize, 13000, cuCtxSynchronize_v2)                          \
    ENT(cuStreamCreate, 2000, cuStreamCreate)                                  \
    OLD(cuStreamDestroy, 2000, cuStreamDestroy)                                \
    ENT(cuStreamDestroy, 4000, cuStreamDestroy_v2)                             \
    ENTP(cuStreamSynchronize, 2000, cuStreamSynchronize, 7000, cuStreamSynchronize_ptsz) \
    ENT(cuMemGetInfo, 3020, cuMemGetInfo_v2)                                   \
    ENT(cuMemAlloc, 3020, cuMemAlloc_v2)                                       \
    ENT(cuMemAllocPitch, 3020, cuMemAllocPitch_v2)                             \
    ENT(cuMemFree, 3020, cuMemFree_v2)                                         \
    ENT(cuMemGetAddressRange, 3020, cuMemGetAddressRange_v2)                   \
    ENT(cuMemAllocManaged, 6000, cuMemAllocManaged)                            \
    OLD(cuMemAllocHost, 2000, cuMemAllocHost)                                  \
    ENT(cuMemAllocHost, 3020, cuMemAllocHost_v2)                               \
    ENT(cuMemHostAlloc, 2020, cuMemHostAlloc)                                  \
    ENT(cuMemFreeHost, 2000, cuMemFreeHost)                                    \
    OLD(cuMemHostRegister, 4000, cuMemHostRegister)                            \
    ENT(cuMemHostRegister, 6050, cuMemHostRegister_v2)                         \
    ENT(cuMemHostUnregister, 4000, cuMemHostUnregister)                        \
    ENT(cuMemHostGetDevicePointer, 3020, cuMemHostGetDevicePointer_v2)         \
    ENTP(cuMemAllocAsync, 11020, cuMemAllocAsync, 11020, cuMemAllocAsync_ptsz) \
    ENTP(cuMemAllocFromPoolAsync, 11020, cuMemAllocFromPoolAsync, 11020,       \
         cuMemAllocFromPoolAsync_ptsz)                                         \
    ENTP(cuMemFreeAsync, 11020, cuMemFreeAsync, 11020, cuMemFreeAsync_ptsz)    \
    ENT(cuDeviceGetDefaultMemPool, 11020, cuDeviceGetDefaultMemPool)           \
    ENT(cuMemPoolCreate, 11020, cuMemPoolCreate)                               \
    ENT(cuMemPoolDestroy, 11020, cuMemPoolDestroy)                             \
    ENT(cuDeviceSetMemPool, 11020, cuDeviceSetMemPool)                         \
    ENT(cuDeviceGetMemPool, 11020, cuDeviceGetMemPool)                         \
    ENT(cuMemGetDefaultMemPool, 13000, cuMemGetDefaultMemPool)                 \
    ENT(cuMemSetMemPool, 13000, cuMemSetMemPool)                               \
    ENT(cuMemGetMemPool, 13000, cuMemGetMemPool)                               \
    ENT(cuGraphCreate, 10000, cuGraphCreate)                                   \
    ENT(cuGraphDestroy, 10000, cuGraphDestroy)                                 \
    ENT(cuGraphAddMemAllocNode, 11040, cuGraphAddMemAllocNode)                 \
    ENT(cuGraphAddMemFreeNode, 11040, cuGraphAddMemFreeNode)                   \
    ENT(cuIpcGetMemHandle, 4010, cuIpcGetMemHandle)                            \
    ENT(cuIpcOpenMemHandle, 11000, cuIpcOpenMemHandle_v2)                      \
    ENT(cuIpcCloseMemHandle, 4010, cuIpcCloseMemHandle)                        \
    ENT(cuImportExternalMemory, 10000, cuImportExternalMemory)                 \
    ENT(cuExternalMemoryGetMappedBuffer, 10000, cuExternalMemoryGetMappedBuffer) \
    ENT(cuDestroyExternalMemory, 10000, cuDestroyExternalMemory)               \
    ENT(cuMemPoolGetAttribute, 11020, cuMemPoolGetAttribute)                   \
    ENT(cuMemPoolSetAttribute, 11020, cuMemPoolSetAttribute)                   \
    ENT(cuMemPoolTrimTo, 11020, cuMemPoolTrimTo)                               \
    ENT(cuMemCreate, 10020, cuMemCreate)                                       \
    ENT(cuMemRelease, 10020, cuMemRelease)                                     \
    ENT(cuMemAddressReserve, 10020, cuMemAddressReserve)                       \
    ENT(cuMemAddressFree, 10020, cuMemAddressFree)                             \
    ENT(cuMemMap, 10020, cuMemMap)                                             \
    ENT(cuMemUnmap, 10020, cuMemUnmap)                                         \
    ENT(cuMemSetAccess, 10020, cuMemSetAccess)                                 \
    ENT(cuMemGetAllocationGranularity, 10020, cuMemGetAllocationGranularity)   \
    ENT(cuArrayCreate, 3020, cuArrayCreate_v2)                                 \
    ENT(cuArray3DCreate, 3020, cuArray3DCreate_v2)                             \
    ENT(cuArrayDestroy, 2000, cuArrayDestroy)                                  \
    ENT(cuMipmappedArrayCreate, 5000, cuMipmappedArrayCreate)                  \
    ENT(cuMipmappedArrayDestroy, 5000, cuMipmappedArrayDestroy)

/* Compile-time signature checks. */
/* (## is applied right here, before cuda.h's macros can rename the base.) */
#define CHK_ENT(base, ver, fn) PFN_CHECK(PFN_##base##_v##ver, fn)
#define CHK_ENTP(base, ver, fn, pver, pfn) \
    PFN_CHECK(PFN_##base##_v##ver, fn) PFN_CHECK(PFN_##base##_v##pver##_ptsz, pfn)
#define CHK_OLD(base, ver, fn)
GPA_TABLE(CHK_ENT, CHK_ENTP, CHK_OLD)

/* The table itself; ptsz versions are kept alongside. */
typedef struct {
    gpa_entry_t e;
    int ptsz_version;
} gpa_row_t;

#define ROW_ENT(base, ver, fn) {{#base, ver, (void *)&local_##fn, NULL}, 0},
#define ROW_ENTP(base, ver, fn, pver, pfn) {{#base, ver, (void *)&local_##fn, (void *)&local_##pfn}, pver},
static const gpa_row_t g_gpa_table[] = {GPA_TABLE(ROW_ENT, ROW_ENTP, ROW_ENT)};

/* VSP_FAKE_GPA_EXPORTS=1: the same table over the exported symbols.  got_<fn>
 * names the exported <fn> by its assembler name (stringised, so cuda.h's
 * macros cannot rename it), so its address is a dynamic relocation against
 * the symbol: the dynamic linker resolves it, preloaded libraries first. */
#define GOT_REF(fn) extern __typeof__(local_##fn) got_##fn __asm__(#fn);
ALL_EXPORTS(GOT_REF)
#define ROW_EXP(base, ver, fn) {{#base, ver, (void *)&got_##fn, NULL}, 0},
#define ROW_EXPP(base, ver, fn, pver, pfn) {{#base, ver, (void *)&got_##fn, (void *)&got_##pfn}, pver},
static const gpa_row_t g_gpa_table_exports[] = {GPA_TABLE(ROW_EXP, ROW_EXPP, ROW_EXP)};
_Static_assert(sizeof g_gpa_table_exports == sizeof g_gpa_table, "one row per entry in both tables");

static void log_lookup(const char *tag, const char *symbol, int version, cuuint64_t flags)
{
    const char *path = getenv("VSP_FAKE_LOG");
    if (!path || !*path)
        return;
    char name[160];
    if (!symbol) {
        strcpy(name, "(null)");
    } else if (!*symbol) {
        strcpy(name, "\"\"");
    } else {
        size_t i = 0;
        for (; symbol[i] && i < sizeof name - 1; i++)
            name[i] = (symbol[i] > ' ' && symbol[i] < 127) ? symbol[i] : '?';
        name[i] = '\0';
    }
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s %d %llu\n", tag, name, version, (unsigned long long)flags);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    int saved = errno;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
        close(fd);
    }
    errno = saved;
}

static CUresult gpa_lookup(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                           CUdriverProcAddressQueryResult *status)
{
    if (!symbol || !pfn)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        return CUDA_ERROR_INVALID_VALUE;
    if (cudaVersion > FAKE_DRIVER_VERSION)
        return CUDA_ERROR_INVALID_VALUE;
    const gpa_row_t *best = NULL;
    int name_found = 0;
    const char *exports = getenv("VSP_FAKE_GPA_EXPORTS");
    const gpa_row_t *table = exports && !strcmp(exports, "1") ? g_gpa_table_exports : g_gpa_table;
    for (size_t i = 0; i < sizeof g_gpa_table / sizeof g_gpa_table[0]; i++) {
        const gpa_row_t *row = &table[i];
        if (strcmp(row->e.name, symbol) != 0)
            continue;
        name_found = 1;
        if (row->e.version <= cudaVersion)
            best = row;
    }
    if (!best) {
        *pfn = NULL;
        *status = name_found ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && best->e.fn_ptsz &&
        cudaVersion >= best->ptsz_version)
        *pfn = best->e.fn_ptsz;
    else
        *pfn = best->e.fn;
    *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                            CUdriverProcAddressQueryResult *symbolStatus)
{
    log_lookup("gpa", symbol, cudaVersion, flags);
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult r = gpa_lookup(symbol, pfn, cudaVersion, flags, &st);
    if (symbolStatus && (r == CUDA_SUCCESS || r == CUDA_ERROR_NOT_FOUND))
        *symbolStatus = st;
    return r;
}

/* Legacy ABI (PFN_cuGetProcAddress_v11030): same lookup, no status. */
EXPORT CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    log_lookup("gpa_legacy", symbol, cudaVersion, flags);
    CUdriverProcAddressQueryResult st;
    return gpa_lookup(symbol, pfn, cudaVersion, flags, &st);
}
