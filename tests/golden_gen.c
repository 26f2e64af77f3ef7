/* Writes the golden traces under tests/data (make golden): synthetic, deterministic traces with
 * fixed pids, times, addresses and module paths that exist on no machine, so the expected JSON
 * beside each (produced by vramspy-report and reviewed by hand) is the same everywhere.
 * Usage: golden_gen DIR. Uses the shim's own ring writer, so the files are what the shim writes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ring_fixture.h"

#define MiB (1024ull * 1024ull)
#define EXE "/opt/bin/worker-orcd"
#define LIBCUDART "/opt/lib/libcudart.so.13"

static struct ring_fixture f;
static uint64_t now_ns = 1000000000ull;

static void put(uint16_t type, const void *a, size_t alen, const void *b, size_t blen, const void *c, size_t clen)
{
    if (ring_fixture_write(&f, type, a, alen, b, blen, c, clen) < 0) {
        fprintf(stderr, "golden_gen: record too large\n");
        exit(1);
    }
}

static void process(uint32_t pid, uint32_t ppid, const char *args, size_t args_len, uint32_t argc)
{
    struct vsp_rec_process p = {.pid = pid, .ppid = ppid, .exe_len = sizeof EXE, .argc = argc,
                                .argv_len = (uint32_t)args_len, .depth = 64, .start_realtime_ns = 1};
    strcpy(p.shim_version, "golden");
    put(VSP_REC_PROCESS, &p, sizeof p, EXE, sizeof EXE, args, args_len);
}

static void module(const char *path, uint64_t base, uint64_t size)
{
    struct vsp_rec_module m = {.base = base, .start = base, .end = base + size,
                               .path_len = (uint32_t)strlen(path) + 1, .build_id_len = 4};
    put(VSP_REC_MODULE, &m, sizeof m, "\xde\xad\xbe\xef", 4, path, strlen(path) + 1);
}

static void stack(uint32_t id, uint64_t a, uint64_t b)
{
    struct vsp_rec_stack s = {.id = id, .nframes = 3};
    uint64_t frames[3] = {a, b, 0x401020};
    put(VSP_REC_STACK, &s, sizeof s, frames, sizeof frames, NULL, 0);
}

static void ev(uint16_t api, uint8_t op, uint8_t mem, uint64_t ptr, uint64_t size, int32_t result, uint32_t stk,
               uint32_t tid, uint64_t freeb, uint64_t totalb)
{
    struct vsp_rec_event e = {.time_ns = (now_ns += 1000000), .ptr = ptr, .size = size, .free_bytes = freeb,
                              .total_bytes = totalb, .stack_id = stk, .tid = tid, .result = result, .device = 0,
                              .api = api, .op = op, .memory = mem};
    /* version-1 events: 88 bytes, no seq (see begin) */
    put(VSP_REC_EVENT, &e, VSP_REC_EVENT_V1_SIZE, NULL, 0, NULL, 0);
}
#define ALLOC(api, mem, ptr, size, stk) ev(VSP_API_##api, VSP_OP_ALLOC, VSP_MEM_##mem, ptr, size, 0, stk, 4242, UINT64_MAX, UINT64_MAX)
#define FREE(api, mem, ptr, size, res, stk) ev(VSP_API_##api, VSP_OP_FREE, VSP_MEM_##mem, ptr, size, res, stk, 4242, UINT64_MAX, UINT64_MAX)

static void begin(const char *dir, const char *name, uint32_t pid, uint32_t ppid)
{
    if (ring_fixture_open(&f, 16 * 1024, VSP_ON_FULL_WAIT) < 0)
        exit(1);
    /* The golden traces stay in format version 1, as shims before 0.2 wrote them: they keep the
     * reader's old-version path tested (version 2's event order is tested in test_trace_format.c
     * and by every test that runs the shim). */
    ((struct vsp_file_header *)f.map)->version = 1;
    static const char args[] = "worker-orcd\0--port\0" "8080";
    process(pid, ppid, args, sizeof args, 3);
    module(EXE, 0x400000, 0x10000);
    module(LIBCUDART, 0x7f0000000000, 0x100000);
    stack(1, 0x4011d6, 0x401100); /* load_weights */
    stack(2, 0x401230, 0x401100); /* kv cache */
    stack(3, 0x401300, 0x401100); /* workspace */
    (void)dir;
    (void)name;
}

static void end(const char *dir, const char *name, int finalize)
{
    if (finalize) {
        struct vsp_rec_end e = {.time_ns = now_ns};
        put(VSP_REC_END, &e, sizeof e, NULL, 0, NULL, 0);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = ring_fixture_keep(&f, path, finalize);
    if (rc < 0) {
        errno = -rc;
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *dir = argv[1];

    /* leaks and host fallback: two device leaks from one stack, one freed buffer, pinned + managed */
    begin(dir, "leaks.trace", 4242, 1);
    ALLOC(cudaMalloc, DEVICE, 0x7f1000000000, 8 * MiB, 1);
    ALLOC(cudaMalloc, DEVICE, 0x7f1000800000, 4 * MiB, 1);
    ALLOC(cudaMalloc, DEVICE, 0x7f1001000000, 16 * MiB, 2);
    FREE(cudaFree, DEVICE, 0x7f1001000000, 16 * MiB, 0, 2);
    ALLOC(cudaMallocHost, HOST_PINNED, 0x5000000, 1 * MiB, 3);
    ALLOC(cudaMallocManaged, MANAGED, 0x7f2000000000, 2 * MiB, 3);
    FREE(cudaFree, MANAGED, 0x7f2000000000, 2 * MiB, 0, 3);
    end(dir, "leaks.trace", 1);

    /* out of memory (exhaustion), then fragmentation followed by a managed fallback */
    begin(dir, "oom.trace", 4243, 1);
    ALLOC(cuMemAlloc_v2, DEVICE, 0x7f1000000000, 60 * MiB, 1);
    ev(VSP_API_cuMemAlloc_v2, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0, 8 * MiB, 2, 2, 4242, 4 * MiB, 64 * MiB);
    FREE(cuMemFree_v2, DEVICE, 0x7f1000000000, 60 * MiB, 0, 1);
    ev(VSP_API_cudaMalloc, VSP_OP_ALLOC, VSP_MEM_DEVICE, 0, 32 * MiB, 2, 3, 4242, 40 * MiB, 64 * MiB);
    ALLOC(cudaMallocManaged, MANAGED, 0x7f2000000000, 32 * MiB, 3);
    FREE(cudaFree, MANAGED, 0x7f2000000000, 32 * MiB, 0, 3);
    end(dir, "oom.trace", 1);

    /* invalid frees: a double free and an unknown pointer */
    begin(dir, "invalid_free.trace", 4244, 1);
    ALLOC(cudaMalloc, DEVICE, 0x7f1000000000, 1 * MiB, 1);
    FREE(cudaFree, DEVICE, 0x7f1000000000, 1 * MiB, 0, 2);
    FREE(cudaFree, DEVICE, 0x7f1000000000, 0, 1, 2);
    FREE(cudaFreeHost, HOST_PINNED, 0x1234, 0, 1, 3);
    end(dir, "invalid_free.trace", 1);

    /* killed: not finalised, everything only in the ring */
    begin(dir, "killed.trace", 4245, 1);
    ALLOC(cudaMalloc, DEVICE, 0x7f1000000000, 2 * MiB, 1);
    ALLOC(cudaMalloc, DEVICE, 0x7f1000200000, 2 * MiB, 1);
    end(dir, "killed.trace", 0);

    /* a forked child's trace: its own pid, its parent's as ppid, no leaks */
    begin(dir, "child.trace", 4300, 4242);
    ALLOC(cudaMalloc, DEVICE, 0x7f1000000000, 1 * MiB, 2);
    FREE(cudaFree, DEVICE, 0x7f1000000000, 1 * MiB, 0, 2);
    end(dir, "child.trace", 1);
    return 0;
}
