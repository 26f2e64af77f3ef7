/* Test program for --plan and --job: an inference worker that labels its memory through
 * include/vramspy/vramspy.h and allocates known sizes, all live at once (the device peak):
 *   weights      8 x 4 MiB = 32 MiB   (label "weights")
 *   kv_cache     2 x 6 MiB = 12 MiB   (label "kv_cache")
 *   activations  3 MiB                (label "activations" with "label-activations", else none)
 *   workspace    1 MiB                (no label: overhead)
 * Peak: 48 MiB. Everything is freed at the end, except 1 MiB (no label) with "leak".
 *   prog_plan [label-activations] [leak]      one worker
 *   prog_plan launch N [ARGS...]              a launcher: N workers, each with RANK, LOCAL_RANK and
 *                                             WORLD_SIZE in its environment (as torchrun sets
 *                                             them); makes no CUDA call itself */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vramspy/vramspy.h"

#define MiB (1024ull * 1024ull)

static int launch(int n, char **argv, int argc)
{
    pid_t pids[64];
    if (n < 1 || n > 64)
        return 2;
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            return 2;
        if (pids[i] == 0) {
            char r[16], w[16];
            snprintf(r, sizeof r, "%d", i);
            snprintf(w, sizeof w, "%d", n);
            setenv("RANK", r, 1);
            setenv("LOCAL_RANK", r, 1);
            setenv("WORLD_SIZE", w, 1);
            char *args[16] = {argv[0]};
            int k = 1;
            for (int j = 0; j < argc && k < 15; j++)
                args[k++] = argv[j + 3];
            args[k] = NULL;
            execv("/proc/self/exe", args);
            _exit(127);
        }
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            rc = 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "launch"))
        return launch(atoi(argv[2]), argv, argc - 3);
    int label_act = 0, leak = 0;
    for (int i = 1; i < argc; i++) {
        label_act |= !strcmp(argv[i], "label-activations");
        leak |= !strcmp(argv[i], "leak");
    }
    void *w[8], *kv[2], *act, *ws, *lk = NULL;
    int r = 0;
    VRAMSPY_LABEL_PUSH("weights");
    for (int i = 0; i < 8; i++)
        r |= cudaMalloc(&w[i], 4 * MiB);
    VRAMSPY_LABEL_POP();
    VRAMSPY_LABEL_PUSH("kv_cache");
    for (int i = 0; i < 2; i++)
        r |= cudaMalloc(&kv[i], 6 * MiB);
    VRAMSPY_LABEL_POP();
    if (label_act)
        VRAMSPY_LABEL_PUSH("activations");
    r |= cudaMalloc(&act, 3 * MiB);
    if (label_act)
        VRAMSPY_LABEL_POP();
    r |= cudaMalloc(&ws, 1 * MiB);
    r |= cudaFree(act);
    r |= cudaFree(ws);
    for (int i = 0; i < 2; i++)
        r |= cudaFree(kv[i]);
    for (int i = 0; i < 8; i++)
        r |= cudaFree(w[i]);
    if (leak)
        r |= cudaMalloc(&lk, 1 * MiB); /* after the peak: the peak stays 48 MiB */
    printf("plan worker %s: %d\n", getenv("RANK") ? getenv("RANK") : "-", r);
    return r ? 1 : 0;
}
