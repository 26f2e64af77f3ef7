/* dlsym interposer entry (x86-64). glibc resolves dlsym(RTLD_NEXT, ...) and dlsym(RTLD_DEFAULT,
 * ...) relative to the *caller's* return address; a C wrapper would make those lookups relative to
 * libvramspy.so (observed: another library's RTLD_NEXT lookup came back to the shim and recursed;
 * see shared/notes/cuda-interception.md). So the special handles leave through a tail jump to the
 * real dlsym, with the caller's return address untouched, and only lookups on a real handle reach
 * the C code (vsp_dlsym_handle), which may substitute a hook for a CUDA entry point. */
    .text
    .globl dlsym
    .type dlsym, @function
    .p2align 4
dlsym:
    .cfi_startproc
    cmpq $-1, %rdi              /* RTLD_NEXT */
    je 1f
    testq %rdi, %rdi            /* RTLD_DEFAULT */
    je 1f
    jmp vsp_dlsym_handle
1:
    movq vsp_real_dlsym(%rip), %rax
    testq %rax, %rax
    jz 2f
    jmp *%rax
2:  /* called before the shim's constructor: resolve the real dlsym, keeping the arguments */
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp               /* 16-byte stack alignment at the call */
    .cfi_adjust_cfa_offset 8
    call vsp_resolve_dlsym
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    popq %rdi
    .cfi_adjust_cfa_offset -8
    movq vsp_real_dlsym(%rip), %rax
    jmp *%rax
    .cfi_endproc
    .size dlsym, .-dlsym

    .section .note.GNU-stack,"",@progbits
