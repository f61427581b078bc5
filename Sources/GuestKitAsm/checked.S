// Calls into the hypervisor that check its promise to give x19-x29 back: the registers are filled with
// seed, seed+1, ... seed+10 around the call, and those that come back different are counted.
#if defined(__aarch64__) && !defined(__linux__)

// \name(a0, a1, a2, number, seed, broken*): the call with x0-x2 and x16 = number; *broken gets the count
// of x19-x29 that changed; returns x0.
    .macro checked_call name, immediate
    .global \name
\name:
    stp     x29, x30, [sp, #-112]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     x4, x5, [sp, #96]
    mov     x16, x3
    mov     x19, x4
    add     x20, x4, #1
    add     x21, x4, #2
    add     x22, x4, #3
    add     x23, x4, #4
    add     x24, x4, #5
    add     x25, x4, #6
    add     x26, x4, #7
    add     x27, x4, #8
    add     x28, x4, #9
    add     x29, x4, #10
    hvc     #\immediate
    ldp     x4, x5, [sp, #96]
    mov     x6, #0
    .irp    reg, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29
    cmp     x\reg, x4
    cinc    x6, x6, ne
    add     x4, x4, #1
    .endr
    str     x6, [x5]
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #112
    ret
    .endm

    .text
    checked_call guest_hypercall_checked, 0xEA1
    checked_call guest_hvc0_checked, 0
#endif
