/* Test program: linked with libctor.so, whose constructor allocates before main. */
#include <stdio.h>

extern int vsp_test_ctor_result;

int main(void)
{
    printf("ctor %d\n", vsp_test_ctor_result);
    return vsp_test_ctor_result == 0 ? 0 : 1;
}
