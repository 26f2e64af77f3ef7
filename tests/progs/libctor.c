/* Test library: allocates 4 KiB of device memory from its constructor, before main and
 * possibly before the shim's own constructor has run. */
#include <cuda_runtime_api.h>

void *vsp_test_ctor_ptr;
int vsp_test_ctor_result = -1;

__attribute__((constructor)) static void early(void)
{
    vsp_test_ctor_result = cudaMalloc(&vsp_test_ctor_ptr, 4096);
}
