/* Test program: ends with _exit(argv[1]) having never used CUDA, linked against libexit_spy.so
 * (a needed library that interposes _exit ahead of libc): under the shim preloaded alone, the
 * spy's _exit must still run (test_shim_lifecycle.c, the shim's direct exit). */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    _exit(argc > 1 ? atoi(argv[1]) : 0);
}
