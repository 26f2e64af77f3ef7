/* Test program (issue 20, item 3): makes the page(s) holding its own .eh_frame_hdr unreadable
 * (PROT_NONE), then allocates and frees through the CUDA runtime from call sites not seen before
 * (so a stack walker has to look up their unwind rules), and prints what it did. A walker that
 * trusts the program headers instead of the page protections faults here. Everything the program
 * itself reads after the mprotect is on the stack or in .data (the protected page may also hold
 * the end of .rodata, where constant strings live). Prints "protected N page(s); M allocations
 * ok, K failed". */
#define _GNU_SOURCE
#include <cuda_runtime_api.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

static char fmt_done[] = "protected %d page(s); %d allocations ok, %d failed\n";
static char fmt_none[] = "no .eh_frame_hdr to protect\n";

static int find_hdr(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t *out = arg;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME) {
            out[0] = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
            out[1] = info->dlpi_phdr[i].p_memsz;
        }
    return 1; /* the first object is the program */
}

__attribute__((noinline)) static int alloc_free(size_t n)
{
    void *p;
    int rc = cudaMalloc(&p, n);
    if (rc == cudaSuccess)
        rc = cudaFree(p);
    __asm__ __volatile__("" ::: "memory");
    return rc;
}

__attribute__((noinline)) static int nested(int d, size_t n)
{
    int rc = d ? nested(d - 1, n) : alloc_free(n);
    __asm__ __volatile__("" ::: "memory");
    return rc;
}

int main(void)
{
    void *p;
    if (cudaMalloc(&p, 1 << 20) == cudaSuccess) /* the runtime's start, before the protection */
        cudaFree(p);
    uintptr_t hdr[2] = {0, 0};
    dl_iterate_phdr(find_hdr, hdr);
    if (!hdr[0]) {
        printf("%s", fmt_none);
        return 1;
    }
    uintptr_t lo = hdr[0] & ~(uintptr_t)4095, hi = (hdr[0] + hdr[1] + 4095) & ~(uintptr_t)4095;
    if (mprotect((void *)lo, hi - lo, PROT_NONE) != 0)
        return 2;
    int ok = 0, bad = 0;
    for (int i = 0; i < 8; i++) {
        if (nested(i, 4096u << (i & 3)) == cudaSuccess)
            ok++;
        else
            bad++;
    }
    printf(fmt_done, (int)((hi - lo) / 4096), ok, bad);
    return 0;
}
