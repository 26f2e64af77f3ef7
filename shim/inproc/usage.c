/* Coverage: how much of the process's device memory the trace accounts for. The process's used
 * device memory is measured outside the hooks — per process through NVML where libnvidia-ml.so.1
 * is present (dlopen'd when the trace is opened, at the first CUDA call, never linked: a sandbox
 * installed later may forbid opening files), else device-wide (total - free from
 * cuMemGetInfo_v2) — and written as a USAGE record beside the bytes the hooks account for then.
 * A path the shim misses (RTLD_DEEPBIND, a static runtime in a plugin, an entry point added next
 * year) shows up as the gap. Samples: after the first recorded call, at each failed device
 * allocation, every metrics interval, and at exit — taken by an exit handler registered after the
 * first recorded call returned, so that it runs before the CUDA runtime's own exit handler (which
 * the runtime registers when it initialises, inside that first call) tears the context and the
 * pools down; the shim's destructor runs after that teardown and samples again (a sample whose
 * used bytes fell below the context baseline says nothing, and the report ignores it).
 * The pools are sampled just before each USAGE record, so the report knows what the
 * stream-ordered pools cached at the moment of the sample.
 * Must never: load NVML in a process that never calls CUDA, or fail a call because NVML did. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"
#include "shim/inproc/inproc.h"
#include "shim/inproc/pools.h"

/* The NVML ABI we use (nvml.h is not part of the CUDA toolkit headers here). */
typedef void *nvml_device;
struct nvml_process { /* nvmlProcessInfo_v2_t, as _v3 of the query takes it */
    unsigned int pid;
    unsigned long long used;
    unsigned int gpu_instance, compute_instance;
};

static struct {
    int state; /* 0 not tried, 1 loaded, 2 absent (spin flag below serialises the load) */
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, nvml_device *);
    int (*procs)(nvml_device, unsigned int *, struct nvml_process *);
} nvml;
static int nvml_busy, sampled_first;
static int exit_handler_set; /* the exit sampler is registered (once per process image) */

static void exit_sample(void)
{
    vsp_trace_exit_sample();
}

static void nvml_load(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    int (*init)(void) = h ? (int (*)(void))dlsym(h, "nvmlInit_v2") : NULL;
    if (init && init() == 0) {
        nvml.count = (int (*)(unsigned int *))dlsym(h, "nvmlDeviceGetCount_v2");
        nvml.handle = (int (*)(unsigned int, nvml_device *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
        nvml.procs = (int (*)(nvml_device, unsigned int *, struct nvml_process *))dlsym(
            h, "nvmlDeviceGetComputeRunningProcesses_v3");
    }
    nvml.state = nvml.count && nvml.handle && nvml.procs ? 1 : 2;
}

/* This pid's used memory over every device, or -1 when NVML cannot say. */
static int nvml_used(uint64_t *used)
{
    if (nvml.state == 0)
        nvml_load();
    if (nvml.state != 1)
        return -1;
    unsigned int ndev = 0;
    if (nvml.count(&ndev) != 0)
        return -1;
    uint64_t sum = 0;
    unsigned int me = (unsigned int)getpid();
    int seen = 0;
    for (unsigned int d = 0; d < ndev && d < 64; d++) {
        nvml_device dev;
        struct nvml_process p[64];
        unsigned int n = 64;
        if (nvml.handle(d, &dev) != 0 || nvml.procs(dev, &n, p) != 0)
            continue;
        seen = 1;
        for (unsigned int i = 0; i < n && i < 64; i++)
            if (p[i].pid == me)
                sum += p[i].used;
    }
    if (!seen)
        return -1;
    *used = sum;
    return 0;
}

static void sample_cold(void *reasonp);

void vsp_usage_sample(int reason)
{
    vsp_cold_call(sample_cold, &reason); /* NVML's own calls: off the hook's stack */
}

static void sample_cold(void *reasonp)
{
    int reason = *(int *)reasonp;
    if (vsp_load_acquire(&sampled_first) == 0 && reason != VSP_USAGE_FIRST)
        return; /* the baseline comes first */
    /* NVML may lock and allocate: one sampler at a time; a busy one means a sample is being
     * taken right now, which is as good */
    if (!vsp_spin_trylock(&nvml_busy))
        return;
    struct vsp_rec_usage u = {.source = VSP_USAGE_NVML, .reason = (uint32_t)reason, .total_bytes = VSP_UNKNOWN_BYTES};
    uint64_t free_b, total_b;
    int have_info = vsp_device_meminfo(&free_b, &total_b) == 0;
    if (nvml_used(&u.used_bytes) < 0) {
        u.source = VSP_USAGE_DEVICE;
        if (!have_info) {
            vsp_spin_unlock(&nvml_busy);
            return; /* nothing measures it */
        }
        u.used_bytes = total_b - free_b;
    }
    if (have_info)
        u.total_bytes = total_b;
    /* what the pools hold beside what they hand out, just before the sample that it explains */
    vsp_pools_sample(reason);
    u.traced_bytes = vsp_live_device_bytes(&vsp_live);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    u.time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    struct vsp_resv res;
    if (vsp_ring_reserve(vsp_trace_ring(), VSP_REC_USAGE, sizeof u, &res) == 0) {
        *(struct vsp_rec_usage *)res.payload = u;
        vsp_ring_commit(vsp_trace_ring(), &res);
    }
    vsp_store_release(&sampled_first, 1);
    vsp_spin_unlock(&nvml_busy);
    /* one registration per process image, whichever first sample gets here (acq_rel exchange: two
     * threads' first samples may race); a forked child inherits it, and its handler samples the
     * child's own trace */
    if (reason == VSP_USAGE_FIRST && !__atomic_exchange_n(&exit_handler_set, 1, __ATOMIC_ACQ_REL))
        atexit(exit_sample);
}

void vsp_usage_prepare(void)
{
    if (!vsp_spin_trylock(&nvml_busy))
        return;
    if (nvml.state == 0)
        nvml_load();
    vsp_spin_unlock(&nvml_busy);
}

int vsp_usage_baseline_taken(void)
{
    return vsp_load_acquire(&sampled_first);
}

void vsp_usage_atfork_child(void)
{
    sampled_first = 0; /* the child's trace gets its own baseline */
    nvml_busy = 0;
}
