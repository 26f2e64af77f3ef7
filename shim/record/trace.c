/* The trace file: created at the process's first CUDA call of any kind (cuInit, a driver lookup, a
 * hook: a process that never touches CUDA leaves no file; one that sandboxes itself after CUDA is
 * up has its file already), as VRAMSPY_OUT expanded, 0600, O_EXCL|O_NOFOLLOW (never overwrite, never follow a
 * symlink; on a name clash ".1", ".2"... is appended). Its header and ring are a MAP_SHARED
 * mapping, so every committed record survives any kind of process death. Also here: the module map
 * records, finalisation at exit with the stderr summary, and the fork-child reset.
 * Must never: print on stdout, crash the host on a bad path or a full disk (warn once and run
 * untraced instead). */
#define _GNU_SOURCE
#include "shim/record/trace.h"
#include "shim/inproc/inproc.h"
#include "shim/walk/unwind.h"
#include "shim/common/human.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/clock.h"
#include "shim/base/tcount.h"
#include "shim/walk/walker.h"

enum { T_NONE = 0, T_OPENING = 1, T_OPEN = VSP_TRACE_OPEN, T_FAILED = 3 };

struct vsp_livetable vsp_live;

int vsp_trace_state VSP_HIDDEN VSP_STARTUP_DATA; /* T_* (atomic): read by every exit, and by the hooks (core.h) */
#define trace_state vsp_trace_state

static struct {
    pid_t owner;                /* pid that created it: a child never finalises its parent's */
    int fd;
    dev_t dev;                  /* identity of the trace file: the fd is checked against it */
    ino_t ino;
    int stopped_why;            /* 0, or why the log stopped growing (warned once): -errno */
    void *map;
    size_t map_len;
    struct vsp_ring ring;
    char path[VSP_PATH_MAX];
    int finalized;
    /* module map bookkeeping (rare path, guarded by a try-flag) */
    int modules_busy;
    unsigned long long adds, subs;
    unsigned nknown;
    struct { uint64_t base, start; } known[2048];
} T;

struct vsp_ring *vsp_trace_ring(void)
{
    return &T.ring;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ssize_t read_small_file(const char *path, char *buf, size_t len)
{
    int fd = vsp_fd_above_stdio(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n < len) {
        ssize_t r = read(fd, buf + n, len - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    return (ssize_t)n;
}

static void write_process_record(const char *exe)
{
    static char argv[32768];
    ssize_t alen = read_small_file("/proc/self/cmdline", argv, sizeof argv - 1);
    if (alen < 0)
        alen = 0;
    if (alen > 0 && argv[alen - 1] != 0)
        argv[alen++] = 0; /* truncated: terminate the last string */
    uint32_t argc = 0;
    for (ssize_t i = 0; i < alen; i++)
        argc += argv[i] == 0;
    size_t elen = strlen(exe) + 1;
    struct vsp_resv res;
    if (vsp_ring_reserve(&T.ring, VSP_REC_PROCESS,
                         (uint32_t)(sizeof(struct vsp_rec_process) + elen + (size_t)alen), &res) < 0)
        return;
    struct vsp_rec_process *p = res.payload;
    memset(p, 0, sizeof *p);
    p->pid = (uint32_t)getpid();
    p->ppid = (uint32_t)getppid();
    p->exe_len = (uint32_t)elen;
    p->argc = argc;
    p->argv_len = (uint32_t)alen;
    p->depth = vsp_cfg.depth;
    p->start_realtime_ns = T.ring.hdr->start_realtime_ns;
    strncpy(p->shim_version, VSP_SHIM_VERSION, sizeof p->shim_version - 1);
    memcpy((char *)(p + 1), exe, elen);
    memcpy((char *)(p + 1) + elen, argv, (size_t)alen);
    vsp_ring_commit(&T.ring, &res);
}

/* The first of the variables that is set and a number, else -1. The secure-mode shim never gets
 * here (it records nothing), so getenv is the caller's own environment. */
static int32_t env_int(const char *const *names)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        char *end;
        long n = v && *v ? strtol(v, &end, 10) : -1;
        if (v && *v && !*end && n >= 0 && n <= INT32_MAX)
            return (int32_t)n;
    }
    return -1;
}

static void write_host_record(void)
{
    static const char *const rank[] = {"RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
    static const char *const local[] = {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                        "SLURM_LOCALID", NULL};
    static const char *const size[] = {"WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", NULL};
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        host[0] = 0;
    host[sizeof host - 1] = 0;
    size_t hlen = strlen(host) + 1;
    struct vsp_resv res;
    if (vsp_ring_reserve(&T.ring, VSP_REC_HOST, (uint32_t)(sizeof(struct vsp_rec_host) + hlen), &res) < 0)
        return;
    struct vsp_rec_host *h = res.payload;
    h->rank = env_int(rank);
    h->local_rank = env_int(local);
    h->world_size = env_int(size);
    h->host_len = (uint32_t)hlen;
    memcpy(h + 1, host, hlen);
    vsp_ring_commit(&T.ring, &res);
}

/* ---- module map ---- */

static int module_known(uint64_t base, uint64_t start)
{
    for (unsigned i = 0; i < T.nknown; i++)
        if (T.known[i].base == base && T.known[i].start == start)
            return 1;
    return 0;
}

static size_t find_build_id(const struct dl_phdr_info *info, const unsigned char **out)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const unsigned char *name = p + sizeof *n;
            const unsigned char *desc = name + ((n->n_namesz + 3) & ~3u);
            if (desc + n->n_descsz > end)
                break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                *out = desc;
                return n->n_descsz;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}

static int emit_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        lo = s < lo ? s : lo;
        hi = e > hi ? e : hi;
    }
    if (hi == 0 || module_known(info->dlpi_addr, lo))
        return 0;
    char exe[PATH_MAX];
    const char *path = info->dlpi_name;
    if (!path || !*path) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        path = exe;
    }
    const unsigned char *bid = NULL;
    size_t bidlen = find_build_id(info, &bid);
    if (bidlen > 64)
        bidlen = 64;
    size_t plen = strlen(path) + 1;
    struct vsp_resv res;
    if (vsp_ring_reserve(&T.ring, VSP_REC_MODULE,
                         (uint32_t)(sizeof(struct vsp_rec_module) + bidlen + plen), &res) == 0) {
        struct vsp_rec_module *m = res.payload;
        m->base = info->dlpi_addr;
        m->start = lo;
        m->end = hi;
        m->path_len = (uint32_t)plen;
        m->build_id_len = (uint16_t)bidlen;
        m->reserved = 0;
        memcpy(m + 1, bid, bidlen);
        memcpy((char *)(m + 1) + bidlen, path, plen);
        vsp_ring_commit(&T.ring, &res);
    }
    if (T.nknown < sizeof T.known / sizeof T.known[0]) {
        T.known[T.nknown].base = info->dlpi_addr;
        T.known[T.nknown].start = lo;
        T.nknown++;
    }
    return 0;
}

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
    unsigned long long *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c[0] = info->dlpi_adds;
        c[1] = info->dlpi_subs;
    }
    return 1; /* the first object is enough */
}

void vsp_trace_modules_changed(void)
{
    unsigned long long c[2] = {0, 0};
    int expected = 0;
    /* acquire/release try-flag: the module bookkeeping is touched by one thread at a time; a
     * thread that finds it busy skips (the busy one is emitting the same modules). */
    if (!vsp_cas_acq_rel(&T.modules_busy, &expected, 1))
        return;
    dl_iterate_phdr(read_counters, c);
    if (c[0] != T.adds || c[1] != T.subs || T.nknown == 0) {
        T.adds = c[0];
        T.subs = c[1];
        dl_iterate_phdr(emit_module, NULL); /* skips what is known, records what is new */
    }
    vsp_store_release(&T.modules_busy, 0);
}

/* ---- open ---- */

static const char *exe_base(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    if (n <= 0)
        return "unknown";
    buf[n] = 0;
    const char *slash = strrchr(buf, '/');
    return slash ? slash + 1 : buf;
}

static int create_file(const char *base_path, char *out, size_t outlen)
{
    for (int i = 0; i < 1000; i++) {
        int n = i == 0 ? snprintf(out, outlen, "%s", base_path)
                       : snprintf(out, outlen, "%s.%d", base_path, i);
        if (n < 0 || (size_t)n >= outlen)
            return -ENAMETOOLONG;
        int fd = open(out, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

/* ---- the trace descriptor ----
 * Programs close descriptors they did not open (daemons: close_range(3, ~0U)), start with 0-2
 * closed, and reuse numbers. So the trace's descriptor is moved out of the way (never 0-2, a high
 * number, close-on-exec), and before each log write it is checked against the trace file's device
 * and inode; if the program closed or reused it, the trace is reopened by its absolute path (no
 * symlink followed, the same inode required) and the shim goes on. Never a byte into another file. */

int vsp_fd_park(int fd)
{
    struct rlimit rl;
    long lo = 3;
    /* a high number, but not so high that the kernel grows the fd table for us */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lo = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 2048 ? 1000 : (long)rl.rlim_cur / 2;
    if (lo < 3)
        lo = 3;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, (int)lo);
    if (hi < 0 && lo > 3)
        hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (hi < 0 && fd > 2)
        return fd; /* keep a usable one */
    close(fd);
    return hi < 0 ? -EMFILE : hi; /* never 0-2 */
}

static int same_file(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == T.dev && st.st_ino == T.ino;
}

/* Is fd still our trace (the program may have closed it, or reused the number)? */
static int fd_is_trace(int fd)
{
    return fd > 2 && same_file(fd);
}

static void log_stopped(int why)
{
    if (T.stopped_why)
        return;
    T.stopped_why = why;
    if (why == -EFBIG)
        vsp_warn("the trace %s reached the file size limit (RLIMIT_FSIZE); later events are counted, "
                 "not kept", T.path);
    else
        vsp_warn("the trace file %s is gone (%s); later events are counted, not kept", T.path, strerror(-why));
}

/* ring.prepare_write: the descriptor still names the trace, and the write stays under RLIMIT_FSIZE. */
static int trace_prepare_write(struct vsp_ring *r, uint64_t off, uint64_t len)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && off + len > rl.rlim_cur) {
        log_stopped(-EFBIG);
        return -EFBIG;
    }
    if (VSP_LIKELY(fd_is_trace(r->fd)))
        return 0;
    /* The program closed or reused our descriptor: not ours any more, never closed by us. Reopen
     * by the absolute path, without following a symlink, and only the same file. */
    int fd = open(T.path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && !same_file(fd)) {
        close(fd);
        fd = -1;
        errno = ENOENT; /* another file took the name */
    }
    if (fd < 0) {
        int why = -errno;
        log_stopped(why);
        return why;
    }
    fd = vsp_fd_park(fd);
    if (fd < 0) {
        log_stopped(fd);
        return fd;
    }
    vsp_debug("trace descriptor was closed or reused by the program; reopened %s as fd %d", T.path, fd);
    r->fd = fd;
    T.fd = fd;
    return 0;
}

/* The ring size for this process: VRAMSPY_RING_SIZE, halved while the header and ring would pass
 * RLIMIT_FSIZE (preallocating past it raises SIGXFSZ). 0 when even the smallest ring does not fit. */
static uint64_t ring_size_within_limit(void)
{
    uint64_t size = vsp_cfg.ring_size;
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return size;
    while (size > VSP_MIN_RING && VSP_HEADER_SIZE + size > rl.rlim_cur)
        size >>= 1;
    if (VSP_HEADER_SIZE + size > rl.rlim_cur)
        return 0;
    if (size != vsp_cfg.ring_size)
        vsp_debug("RLIMIT_FSIZE is %llu bytes: ring of %llu bytes", (unsigned long long)rl.rlim_cur,
                  (unsigned long long)size);
    return size; /* the one warning comes if the trace reaches the limit (log_stopped) */
}

static int open_trace(void)
{
    char exebuf[PATH_MAX], pattern_out[VSP_PATH_MAX], path[VSP_PATH_MAX];
    const char *exe = exe_base(exebuf, sizeof exebuf);
    int rc = vsp_expand_pattern(vsp_config_out(&vsp_cfg), (long)getpid(), exe, pattern_out, sizeof pattern_out);
    if (rc < 0) {
        vsp_warn("cannot expand VRAMSPY_OUT=%s: %s; this process is not traced", vsp_config_out(&vsp_cfg),
                 strerror(-rc));
        return rc;
    }
    /* A directory (one that exists, or a name ending in '/') gets the default name inside it:
     * VRAMSPY_OUT=/srv/traces means "in /srv/traces", not a file beside it. */
    size_t len = strlen(pattern_out);
    struct stat dst;
    if (len && (pattern_out[len - 1] == '/' || (stat(pattern_out, &dst) == 0 && S_ISDIR(dst.st_mode)))) {
        char name[VSP_PATH_MAX];
        rc = vsp_expand_pattern(VSP_DEFAULT_OUT, (long)getpid(), exe, name, sizeof name);
        int n = rc < 0 ? -1
                       : snprintf(pattern_out + len, sizeof pattern_out - len, "%s%s",
                                  pattern_out[len - 1] == '/' ? "" : "/", name);
        if (n < 0 || (size_t)n >= sizeof pattern_out - len) {
            vsp_warn("VRAMSPY_OUT=%s: the directory's name is too long; this process is not traced", vsp_config_out(&vsp_cfg));
            return -ENAMETOOLONG;
        }
    }
    uint64_t ring_size = ring_size_within_limit();
    if (!ring_size) {
        vsp_warn("the file size limit (RLIMIT_FSIZE) is below the smallest trace; this process is not traced");
        return -EFBIG;
    }
    int fd = create_file(pattern_out, path, sizeof path);
    if (vsp_cfg.out_bad[0])
        vsp_warn("VRAMSPY_OUT=%s is not a usable path pattern (%%p, %%e and %%%% are the only escapes); "
                 "the trace goes to %s", vsp_cfg.out_bad, fd >= 0 ? path : pattern_out);
    if (fd < 0) {
        vsp_warn("cannot create trace file %s: %s; this process is not traced", pattern_out, strerror(-fd));
        return fd;
    }
    fd = vsp_fd_park(fd);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        vsp_warn("cannot keep a descriptor for trace file %s; this process is not traced", path);
        if (fd >= 0)
            close(fd);
        unlink(path);
        return -EMFILE;
    }
    size_t map_len = VSP_HEADER_SIZE + ring_size;
    /* Allocate the blocks now: a store into a shared mapping of a sparse file on a full disk
     * would raise SIGBUS in the host program. */
    rc = posix_fallocate(fd, 0, (off_t)map_len);
    if (rc != 0) {
        vsp_warn("cannot size trace file %s: %s; this process is not traced", path, strerror(rc));
        close(fd);
        unlink(path);
        return -rc;
    }
    void *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        vsp_warn("cannot map trace file %s: %s; this process is not traced", path, strerror(-rc));
        close(fd);
        unlink(path);
        return rc;
    }
    struct vsp_file_header *h = map;
    h->version = VSP_TRACE_VERSION;
    h->header_size = VSP_HEADER_SIZE;
    h->ring_offset = VSP_HEADER_SIZE;
    h->ring_size = ring_size;
    h->log_offset = VSP_HEADER_SIZE + ring_size;
    h->pid = (uint32_t)getpid();
    h->start_realtime_ns = clock_ns(CLOCK_REALTIME);
    /* (a coarse clock lags the precise one by up to a tick: the start is taken from the clock the
     * events are, so none comes out before it) */
    h->start_monotonic_ns = vsp_clock_coarse() ? vsp_clock_ns() : clock_ns(CLOCK_MONOTONIC);
    h->flags = VSP_FLAG_SEQMARKS; /* the drainer writes SEQMARK records (ring.c) */
    if (vsp_clock_coarse())
        h->flags |= VSP_FLAG_COARSE_CLOCK;
    /* release: a reader that sees the magic sees a complete header. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(h->magic, VSP_TRACE_MAGIC, VSP_TRACE_MAGIC_LEN);

    T.fd = fd;
    T.dev = st.st_dev;
    T.ino = st.st_ino;
    T.stopped_why = 0;
    T.map = map;
    T.map_len = map_len;
    T.owner = getpid();
    T.finalized = 0;
    T.nknown = 0;
    T.adds = T.subs = 0;
    if (path[0] == '/' || !getcwd(T.path, sizeof T.path) ||
        strlen(T.path) + strlen(path) + 2 > sizeof T.path)
        snprintf(T.path, sizeof T.path, "%s", path);
    else
        snprintf(T.path + strlen(T.path), sizeof T.path - strlen(T.path), "/%s", path);
    vsp_ring_attach(&T.ring, h, fd, vsp_cfg.on_full);
    T.ring.prepare_write = trace_prepare_write;
    if (vsp_stacks_init() < 0)
        vsp_warn("cannot allocate the stack table; stacks are written once per event");
    /* This thread's stack bounds now (the main thread's come from /proc/self/maps): its later
     * walks open no file, in a sandbox installed after this first CUDA call too. */
    vsp_walk_stack(NULL, 0, 0);
    char fullexe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", fullexe, sizeof fullexe - 1);
    fullexe[n > 0 ? n : 0] = 0;
    write_process_record(fullexe);
    write_host_record();
    vsp_trace_modules_changed();
    return 0;
}

static void open_cold(void *rcp)
{
    if (!vsp_live.slots && vsp_livetable_init(&vsp_live, 1u << 20) < 0)
        vsp_warn("cannot allocate the live table; the exit summary will be approximate");
    int rc = open_trace();
    vsp_metrics_start();
    if (rc == 0)
        vsp_usage_prepare(); /* NVML loaded now, not at the first sample (sandboxes) */
    *(int *)rcp = rc;
}

int vsp_trace_foreign(void)
{
    return vsp_load_acquire(&trace_state) == T_OPEN && T.owner != getpid();
}

int vsp_trace_ensure(void)
{
    /* acquire: pairs with the release that publishes T_OPEN; the ring is then fully set up. */
    int s = vsp_load_acquire(&trace_state);
    if (VSP_LIKELY(s == T_OPEN))
        return 1;
    if (s == T_FAILED || vsp_tls.in_open)
        return 0;
    int expected = T_NONE;
    if (vsp_cas_acq_rel(&trace_state, &expected, T_OPENING)) {
        vsp_tls.in_open = 1;
        int rc = -1;
        vsp_cold_call(open_cold, &rc); /* paths, files, a thread: deep work, off the host's stack */
        vsp_tls.in_open = 0;
        /* release: everything open_trace set up is visible to threads that see T_OPEN. */
        vsp_store_release(&trace_state, rc == 0 ? T_OPEN : T_FAILED);
        return rc == 0;
    }
    while ((s = vsp_load_acquire(&trace_state)) == T_OPENING)
        sched_yield(); /* the first event of the process is opening the file */
    return s == T_OPEN;
}

/* ---- exit ---- */

static void report_command(char *buf, size_t len)
{
    /* The analyzer sits beside the shim in the build tree (build/) and after make install
     * ($PREFIX/lib/../bin); name it by absolute path when we can find it. */
    Dl_info di;
    char dir[PATH_MAX];
    if (dladdr((void *)&report_command, &di) && di.dli_fname) {
        snprintf(dir, sizeof dir, "%s", di.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = 0;
            const char *cands[] = {"%s/vramspy-report", "%s/../bin/vramspy-report"};
            for (size_t i = 0; i < 2; i++) {
                snprintf(buf, len, cands[i], dir);
                if (access(buf, X_OK) == 0) {
                    char real[PATH_MAX];
                    if (realpath(buf, real))
                        snprintf(buf, len, "%s", real);
                    return;
                }
            }
        }
    }
    snprintf(buf, len, "vramspy-report");
}

static void print_summary(void)
{
    struct vsp_counters snap, *c = &snap;
    vsp_live_counters(&vsp_live, &snap);
    unsigned long long live_bytes = 0;
    for (int m = 0; m < VSP_MEM_COUNT_; m++)
        live_bytes += vsp_load_relaxed(&c->live_bytes[m]);
    char peak[32], live[32], cmd[PATH_MAX];
    vsp_human_bytes(peak, sizeof peak, vsp_load_relaxed(&c->peak_device_bytes));
    vsp_human_bytes(live, sizeof live, live_bytes);
    unsigned long long nalloc = vsp_load_relaxed(&c->allocations), nfree = vsp_load_relaxed(&c->frees),
                       nlive = vsp_load_relaxed(&c->live_count);
    vsp_warn("%llu allocation%s (%llu of host memory), %llu failed, %llu free%s; peak device %s; "
             "live at exit: %llu allocation%s, %s%s",
             nalloc, nalloc == 1 ? "" : "s", vsp_load_relaxed(&c->host_allocations),
             vsp_load_relaxed(&c->failed), nfree, nfree == 1 ? "" : "s", peak, nlive, nlive == 1 ? "" : "s", live,
             vsp_load_relaxed(&c->untracked) ? " (approximate: live table full)" : "");
    if (vsp_load_acquire(&trace_state) == T_OPEN) {
        unsigned long long dropped = vsp_load_relaxed(&T.ring.hdr->dropped);
        if (dropped)
            vsp_warn("%llu events were dropped (%s)", dropped,
                     T.stopped_why ? "after the trace stopped growing, see above"
                     : T.ring.failed ? "writing the trace failed"
                                     : "see VRAMSPY_ON_FULL");
        report_command(cmd, sizeof cmd);
        vsp_warn("trace: %s", T.path);
        vsp_warn("analyze: %s %s", cmd, T.path);
    } else {
        vsp_warn("no trace was written");
    }
}

/* The exit handler's usage and pool sample: this process's own open trace, not yet finalised. */
void vsp_trace_exit_sample(void)
{
    if (vsp_load_acquire(&trace_state) != T_OPEN || T.owner != getpid() ||
        __atomic_load_n(&T.finalized, __ATOMIC_ACQUIRE))
        return;
    vsp_usage_sample(VSP_USAGE_EXIT);
}

/* After the final drain, the ring's blocks go back to the file system (a short trace would
 * otherwise take ring_size on disk for nothing: 4 MiB by default). Only when everything is in the
 * log (tail == head). A window of POST_WINDOW bytes from head stays allocated for records written
 * after END (CUDA calls from later destructors); reservations past it are refused and counted as
 * dropped (ring.h, post_limit), since a store into a hole of a shared mapping on a full disk would
 * raise SIGBUS. The window is set before the punch, and nothing inside it is punched. */
#define POST_WINDOW (64u << 10)

static int punch(uint64_t off, uint64_t len)
{
    return len ? fallocate(T.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) : 0;
}

static void give_back_ring(void)
{
    struct vsp_ring *r = &T.ring;
    uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_SEQ_CST);
    if (r->failed || __atomic_load_n(&r->hdr->tail, __ATOMIC_SEQ_CST) != head || !fd_is_trace(T.fd) ||
        r->size <= POST_WINDOW)
        return;
    /* seq_cst: the limit is in force before head is read again (reservations check it first) */
    __atomic_store_n(&r->post_limit, head + POST_WINDOW, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->hdr->head, __ATOMIC_SEQ_CST) > head + POST_WINDOW)
        return; /* a reservation raced past the window: leave the ring as it is */
    uint64_t w0 = head & r->mask, w1 = w0 + POST_WINDOW; /* the window, in ring offsets */
    uint64_t base = r->hdr->ring_offset;
    if (w1 <= r->size) {
        punch(base, w0);
        punch(base + w1, r->size - w1);
    } else {
        punch(base + (w1 - r->size), w0 - (w1 - r->size)); /* the window wraps */
    }
}

static void take_back_ring(void)
{
    /* the process goes on (a failed exec): the whole ring again, as at creation */
    struct vsp_ring *r = &T.ring;
    if (__atomic_load_n(&r->post_limit, __ATOMIC_ACQUIRE) &&
        posix_fallocate(T.fd, (off_t)r->hdr->ring_offset, (off_t)r->size) == 0)
        __atomic_store_n(&r->post_limit, 0, __ATOMIC_RELEASE);
}

static void finalize_cold(void *quickp);

void vsp_trace_finalize(int quick)
{
    int s = vsp_load_acquire(&trace_state);
    if (s == T_NONE || s == T_OPENING)
        return; /* never touched CUDA (every process under a global preload): nothing, not even a
                   cold stack mapped */
    vsp_cold_call(finalize_cold, &quick); /* the summary's buffers, metrics: off the caller's stack */
}

static void finalize_cold(void *quickp)
{
    int quick = *(int *)quickp;
    int s = vsp_load_acquire(&trace_state);
    if (s == T_NONE || s == T_OPENING)
        return; /* never touched CUDA: nothing to say */
    if (s == T_OPEN && T.owner != getpid())
        return; /* a child made without our fork handler: not ours to finalise */
    if (__atomic_exchange_n(&T.finalized, 1, __ATOMIC_ACQ_REL))
        return;
    if (s == T_OPEN) {
        vsp_usage_sample(VSP_USAGE_EXIT);
        struct vsp_counters snap, *c = &snap;
        vsp_live_counters(&vsp_live, &snap);
        struct vsp_resv res;
        if (vsp_ring_reserve(&T.ring, VSP_REC_END, sizeof(struct vsp_rec_end), &res) == 0) {
            struct vsp_rec_end *e = res.payload;
            unsigned long long live_bytes = 0;
            for (int m = 0; m < VSP_MEM_COUNT_; m++)
                live_bytes += vsp_load_relaxed(&c->live_bytes[m]);
            e->time_ns = clock_ns(CLOCK_MONOTONIC);
            e->allocations = vsp_load_relaxed(&c->allocations);
            e->frees = vsp_load_relaxed(&c->frees);
            e->failed = vsp_load_relaxed(&c->failed);
            e->host_allocations = vsp_load_relaxed(&c->host_allocations);
            e->live_allocations = vsp_load_relaxed(&c->live_count);
            e->live_bytes = live_bytes;
            e->peak_device_bytes = vsp_load_relaxed(&c->peak_device_bytes);
            e->dropped = vsp_load_relaxed(&T.ring.hdr->dropped);
            e->nested_skipped = vsp_load_relaxed(&c->nested);
            e->abandoned = vsp_load_relaxed(&c->abandoned);
            vsp_ring_commit(&T.ring, &res);
        }
        vsp_ring_flush(&T.ring, 1);
        give_back_ring();
        T.ring.hdr->end_monotonic_ns = clock_ns(CLOCK_MONOTONIC);
        /* relaxed RMW: readers look at flags only after the writer is gone */
        vsp_fetch_or_relaxed(&T.ring.hdr->flags, VSP_FLAG_COMPLETE);
        if (T.ring.failed && !T.stopped_why)
            vsp_warn("writing the trace log failed (disk full?); the trace is incomplete");
        /* The mapping stays: a CUDA call from a later destructor is still recorded. */
    }
    if (quick)
        return; /* _exit: the program asked for no clean-up; the trace is complete all the same */
    vsp_metrics_write();
    if (!vsp_cfg.quiet && vsp_cfg.summary)
        print_summary();
}

int vsp_trace_before_exec(void)
{
    if (vsp_load_acquire(&trace_state) != T_OPEN)
        return 1; /* no trace of ours (a shell's exec): nothing to finalise, nothing to undo */
    int was = __atomic_load_n(&T.finalized, __ATOMIC_ACQUIRE);
    if (!was)
        vsp_trace_finalize(1); /* END, drained, COMPLETE: the new image never runs our destructor */
    return was;
}

void vsp_trace_exec_failed(int finalized)
{
    if (finalized || !__atomic_load_n(&T.finalized, __ATOMIC_ACQUIRE))
        return; /* finalised before the exec, or by someone else: theirs to keep */
    /* The exec returned: the process goes on, its later calls are recorded after the END record
     * and its exit finalises the trace again (a second END). relaxed RMW: as in finalize. */
    if (vsp_load_acquire(&trace_state) == T_OPEN && T.owner == getpid()) {
        take_back_ring();
        __atomic_fetch_and(&T.ring.hdr->flags, ~VSP_FLAG_COMPLETE, __ATOMIC_RELAXED);
        T.ring.hdr->end_monotonic_ns = 0;
    }
    __atomic_store_n(&T.finalized, 0, __ATOMIC_RELEASE);
}

void vsp_trace_atfork_child(void)
{
    /* The child starts a trace of its own on its first CUDA call and never writes the parent's:
     * drop the parent's mapping (MAP_SHARED; unmapping it here leaves the parent's intact). */
    if (trace_state == T_OPEN) {
        munmap(T.map, T.map_len);
        if (fd_is_trace(T.fd))
            close(T.fd); /* only if it is still ours */
    }
    T.map = NULL;
    trace_state = T_NONE;
    T.finalized = 0;
    T.modules_busy = 0;
    T.nknown = 0;
    T.adds = T.subs = 0;
    vsp_stacks_reset();
    vsp_metrics_atfork_child();
    vsp_livetable_destroy(&vsp_live);
    memset(&vsp_live, 0, sizeof vsp_live);
    vsp_tc_reset();
}
