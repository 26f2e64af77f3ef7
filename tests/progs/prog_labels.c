/* Test program: labels its own allocations with include/vramspy/vramspy.h. weights: 8 MiB;
 * kv_cache: 3 x 1 MiB, one freed; then 512 KiB unlabelled. Runs the same without the shim. */
#include <cuda_runtime_api.h>
#include <stdio.h>

#include "vramspy/vramspy.h"

#define MiB (1024ull * 1024ull)

int main(void)
{
    void *w, *kv[3], *u;
    VRAMSPY_LABEL_PUSH("weights");
    int r = cudaMalloc(&w, 8 * MiB);
    VRAMSPY_LABEL_POP();
    VRAMSPY_LABEL_PUSH("kv_cache");
    for (int i = 0; i < 3; i++)
        r |= cudaMalloc(&kv[i], 1 * MiB);
    cudaFree(kv[1]);
    VRAMSPY_LABEL_POP();
    r |= cudaMalloc(&u, 512 * 1024);
    printf("labels %d %s\n", r, vsp_label_push ? "shim" : "no shim");
    return r;
}
