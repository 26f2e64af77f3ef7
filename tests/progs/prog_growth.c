/* Growth shapes (test_holders.c, issue 19): grow = 200 iterations keeping 1 MiB each, all freed at
 * the very end (growkeep: never freed); steady = 200 alloc/free pairs of 1 MiB; warmup = 100 MiB taken in the first few
 * percent of the run and kept, then a steady loop; spill = a steady loop, then one request served
 * piece by piece from one call site (1 MiB at a time, 200 pieces, as PyTorch's expandable segments
 * map a large request in chunks) until the next piece, a request larger than the device, fails,
 * and every piece is given back. Each iteration sleeps 1 ms so that the run's time is spread
 * evenly. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define N 200

__attribute__((noinline)) static void *grow_cache(void)
{
    void *p = NULL;
    cudaMalloc(&p, 1 << 20);
    return p;
}

__attribute__((noinline)) static void *scratch(void)
{
    void *p = NULL;
    cudaMalloc(&p, 1 << 20);
    return p;
}

__attribute__((noinline)) static void *piece(size_t size)
{
    void *p = NULL;
    return cudaMalloc(&p, size) == cudaSuccess ? p : NULL;
}

__attribute__((noinline)) static void *warm(void)
{
    void *p = NULL;
    cudaMalloc(&p, 1 << 20);
    return p;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "grow";
    static void *kept[N];
    if (!strcmp(mode, "grow") || !strcmp(mode, "growkeep")) {
        for (int i = 0; i < N; i++) {
            kept[i] = grow_cache();
            usleep(1000);
        }
        for (int i = 0; !strcmp(mode, "grow") && i < N; i++)
            cudaFree(kept[i]);
    } else if (!strcmp(mode, "steady") || !strcmp(mode, "warmup")) {
        int warmup = !strcmp(mode, "warmup");
        for (int i = 0; warmup && i < 100; i++)
            kept[i] = warm();
        for (int i = 0; i < N; i++) {
            void *p = scratch();
            usleep(1000);
            cudaFree(p);
        }
        for (int i = 0; warmup && i < 100; i++)
            cudaFree(kept[i]);
    } else if (!strcmp(mode, "spill")) {
        for (int i = 0; i < N; i++) {
            void *p = scratch();
            usleep(1000);
            cudaFree(p);
        }
        int n = 0; /* one loop, one call site: the failing piece has the pieces' stack */
        for (void *p; (p = piece(n < N ? 1u << 20 : 1ull << 40)) != NULL; n++) {
            kept[n] = p;
            usleep(1000);
        }
        printf("pieces %d, then one failed\n", n);
        for (int i = 0; i < n; i++)
            cudaFree(kept[i]);
    } else {
        fprintf(stderr, "usage: prog_growth grow|growkeep|steady|warmup|spill\n");
        return 2;
    }
    printf("%s done\n", mode);
    return 0;
}
