/* A shared library on the compared stacks (tests/progs/walkcmp*.c*): a recursion inside it, then
 * a call back into the program. Built at the program's optimisation level. */
static volatile int sink;
int walkcmp_lib_call(int depth, void (*cb)(void));
/* called through a volatile pointer: -O2 keeps every level of the recursion a frame */
static int (*volatile self)(int, void (*)(void)) = walkcmp_lib_call;

int walkcmp_lib_call(int depth, void (*cb)(void))
{
    if (depth <= 0) {
        cb();
        sink++;
        return 0;
    }
    int r = self(depth - 1, cb);
    sink += r; /* no tail call */
    return r + 1;
}
