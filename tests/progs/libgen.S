/* gen_call(fn): calls fn from a frame of GEN_FRAME bytes, with unwind tables saying so. Built twice
 * (tests/tests.mk) with different frame sizes and otherwise the same bytes: loaded one after the
 * other at the same address, the return address into gen_call is the same and its unwind rule is
 * not (tests/test_walker.c: a rule cached for the first must not be used for the second). */
    .text
    .globl gen_call
    .type gen_call, @function
    .p2align 4
gen_call:
    .cfi_startproc
    subq $GEN_FRAME, %rsp
    .cfi_adjust_cfa_offset GEN_FRAME
    call *%rdi
    addq $GEN_FRAME, %rsp
    .cfi_adjust_cfa_offset -GEN_FRAME
    ret
    .cfi_endproc
    .size gen_call, .-gen_call
    .section .note.GNU-stack,"",@progbits
