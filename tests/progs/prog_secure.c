/* Test program: linked with build/libvramspy.so as a DT_NEEDED library (and absolute RPATHs to it
 * and to the fakes), so that the shim is loaded even in secure mode, where the loader ignores
 * LD_PRELOAD and LD_LIBRARY_PATH: what /etc/ld.so.preload does to setuid programs (issue #10).
 * The test copies it, makes the copy setuid root and runs it as nobody. Prints "secure N"
 * (getauxval(AT_SECURE)) and then its CUDA result codes. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(void)
{
    alarm(60);
    printf("secure %lu\n", getauxval(AT_SECURE));
    void *a = NULL, *b = NULL;
    printf("malloc %d\n", cudaMalloc(&a, 1 << 20));
    printf("malloc %d\n", cudaMalloc(&b, 2 << 20));
    printf("free %d\n", cudaFree(a));
    return 0;
}
