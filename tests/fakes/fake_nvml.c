/*
 * fake_nvml.c - a fake NVML (libnvidia-ml.so.1) for vramspy's coverage tests.
 *
 * Just what the shim asks (shim/inproc/usage.c): nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2 (one
 * device), nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetComputeRunningProcesses_v3. The process
 * list holds one entry, the calling process, whose used memory is what the fake driver
 * (libcuda.so.1, looked up with RTLD_NOLOAD: never loaded here) reports used: total - free.
 * Return codes: 0 success, 1 uninitialized, 2 invalid argument, 7 insufficient size.
 */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stddef.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

struct nvml_process {
    unsigned int pid;
    unsigned long long used;
    unsigned int gpu_instance, compute_instance;
};

static int initialised;
static int device_token;

EXPORT int nvmlInit_v2(void)
{
    initialised = 1;
    return 0;
}

EXPORT int nvmlShutdown(void)
{
    initialised = 0;
    return 0;
}

EXPORT int nvmlDeviceGetCount_v2(unsigned int *count)
{
    if (!initialised)
        return 1;
    if (!count)
        return 2;
    *count = 1;
    return 0;
}

EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device)
{
    if (!initialised)
        return 1;
    if (!device || index != 0)
        return 2;
    *device = &device_token;
    return 0;
}

EXPORT int nvmlDeviceGetComputeRunningProcesses_v3(void *device, unsigned int *count, struct nvml_process *infos)
{
    if (!initialised)
        return 1;
    if (device != &device_token || !count)
        return 2;
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    CUresult (*info)(size_t *, size_t *) = h ? (CUresult(*)(size_t *, size_t *))dlsym(h, "cuMemGetInfo_v2") : NULL;
    size_t fr = 0, tot = 0;
    int have = info && info(&fr, &tot) == CUDA_SUCCESS;
    if (h)
        dlclose(h);
    if (!have) {
        *count = 0; /* the process has no context: not a compute process */
        return 0;
    }
    if (*count < 1 || !infos) {
        *count = 1;
        return 7;
    }
    infos[0].pid = (unsigned int)getpid();
    infos[0].used = tot - fr;
    infos[0].gpu_instance = infos[0].compute_instance = 0xffffffffu;
    *count = 1;
    return 0;
}
