/* One link of a call chain across many identical libraries (see many.h). Built -O2 without frame
 * pointers, so a walker that does not find this library's unwind tables cannot step over it with
 * the rbp chain: the frame that called into it is lost. The build copies it (tests/tests.mk). */
#include "many.h"

void many_step(const struct many_chain *c, int i)
{
    if (i + 1 < c->n)
        c->step[i + 1](c, i + 1);
    else
        c->leaf(c->arg);
    __asm__ __volatile__("" ::: "memory"); /* no tail call: one frame per link */
}
