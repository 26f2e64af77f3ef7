/* Code without unwind tables (built -fno-asynchronous-unwind-tables -fno-unwind-tables, with
 * frame pointers), for the walkers' frame-pointer step. */
static volatile int sink;
int walkcmp_nocfi_call(int depth, void (*cb)(void));
/* called through a volatile pointer: -O2 keeps every level of the recursion a frame */
static int (*volatile self)(int, void (*)(void)) = walkcmp_nocfi_call;

int walkcmp_nocfi_call(int depth, void (*cb)(void))
{
    if (depth <= 0) {
        cb();
        sink++;
        return 0;
    }
    int r = self(depth - 1, cb);
    sink += r;
    return r + 1;
}
