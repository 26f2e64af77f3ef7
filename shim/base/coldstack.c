/* Cold work on a stack of the shim's own. A hook runs on the host's stack, which may be a 16 KiB
 * thread or coroutine stack that the real CUDA call alone nearly fills; the shim's rare, deep work
 * (creating the trace file, formatting a warning, symbolising a new stack for VRAMSPY_PURPOSES,
 * emitting module records, the out-of-memory breakdown, NVML, finalisation) runs instead on one
 * of a few stacks mapped here on first need, so a hook adds only its small hot path to the
 * program's stack (docs/PERFORMANCE.md, tests/test_shim_hostile.c measure it).
 * A cold stack is taken with a try-flag, never waited on for long: when every one is busy (other
 * threads in cold work at the same moment, or this thread re-entered from a signal handler) the
 * work runs where it is, on the caller's stack, as before this file existed. So no thread ever
 * waits on another's cold work (which may hold the loader's lock).
 * Must never: block, allocate with malloc, or lose the caller's errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>

#include "shim/base/atomic.h"
#include "shim/base/process.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COLD_SWITCH 0 /* sanitizers track stacks of their own: run in place */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COLD_SWITCH 0
#else
#define COLD_SWITCH 1
#endif
#else
#define COLD_SWITCH 1
#endif

#define COLD_STACKS 4
#define COLD_SIZE (512u << 10) /* libdw's symbolisation and glibc's stdio are the deepest users */
#define COLD_GUARD 4096u

static struct {
    int busy;          /* try-flag */
    unsigned char *top; /* NULL until mapped (under the flag) */
} cold[COLD_STACKS];
static __thread int on_cold __attribute__((tls_model("initial-exec"))); /* this thread runs cold work */

/* Calls fn(arg) with rsp at top (16-byte aligned), then returns on the caller's stack. rbx keeps
 * the caller's rsp across the call (callee-saved); the CFI says where the caller's frame is, so a
 * debugger or unwinder walks from the cold stack back into the host's. */
void vsp_call_on_stack(void (*fn)(void *), void *arg, void *top) VSP_HIDDEN;
__asm__(".text\n"
        ".globl vsp_call_on_stack\n"
        ".hidden vsp_call_on_stack\n"
        ".type vsp_call_on_stack, @function\n"
        ".p2align 4\n"
        "vsp_call_on_stack:\n"
        ".cfi_startproc\n"
        "    pushq %rbx\n"
        ".cfi_adjust_cfa_offset 8\n"
        ".cfi_rel_offset %rbx, 0\n"
        "    movq %rsp, %rbx\n"
        ".cfi_def_cfa_register %rbx\n"
        "    movq %rdx, %rsp\n"
        "    movq %rdi, %rax\n"
        "    movq %rsi, %rdi\n"
        "    callq *%rax\n"
        "    movq %rbx, %rsp\n"
        ".cfi_def_cfa_register %rsp\n"
        "    popq %rbx\n"
        ".cfi_adjust_cfa_offset -8\n"
        ".cfi_restore %rbx\n"
        "    ret\n"
        ".cfi_endproc\n"
        ".size vsp_call_on_stack, .-vsp_call_on_stack\n");

static unsigned char *map_cold(void)
{
    void *p = mmap(NULL, COLD_SIZE + COLD_GUARD, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    mprotect(p, COLD_GUARD, PROT_NONE); /* an overflow faults instead of writing below */
    return (unsigned char *)p + COLD_GUARD + COLD_SIZE;
}

void vsp_cold_call(void (*fn)(void *), void *arg)
{
    if (!COLD_SWITCH || on_cold) {
        fn(arg); /* already on a cold stack (nested cold work) */
        return;
    }
    int saved = errno;
    /* A few rounds over the stacks: another thread's cold work is usually short; never more,
     * the holder may wait on something we hold. */
    for (int round = 0; round < 64; round++) {
        for (int i = 0; i < COLD_STACKS; i++) {
            if (!vsp_spin_trylock(&cold[i].busy))
                continue;
            if (!cold[i].top)
                cold[i].top = map_cold(); /* under the flag: one mapping per slot */
            if (!cold[i].top) {
                vsp_spin_unlock(&cold[i].busy);
                break;
            }
            on_cold = 1;
            errno = saved;
            vsp_call_on_stack(fn, arg, cold[i].top);
            saved = errno;
            on_cold = 0;
            vsp_spin_unlock(&cold[i].busy);
            errno = saved;
            return;
        }
        sched_yield();
    }
    errno = saved;
    fn(arg); /* all busy (or no memory): in place */
}

void vsp_cold_atfork_child(void)
{
    /* the child has one thread, this one, which is not in cold work (fork is called from the
     * program, not from inside it); stacks another thread held are free again */
    for (int i = 0; i < COLD_STACKS; i++)
        cold[i].busy = 0;
}
