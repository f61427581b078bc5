// A guest of our own starts here: an arm64 Image header (Tern and Xen load it by that header), a
// stack per vCPU, the EL1 vector table, and the instructions Swift cannot write.
#if defined(__aarch64__) && !defined(__linux__)
#define STACK_SIZE 0x4000

    .section .text.head, "ax"
    .global _start
_start:
    b       entry
    .long   0
    .quad   0                   // text_offset: load at the base of RAM
    .quad   __image_size
    .quad   0x2                 // little endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0

entry:
    mov     x19, x0             // DTB
    adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    mov     x2, #STACK_SIZE
    add     sp, x1, x2
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    bl      guest_kit_init
    mov     x0, x19
    bl      guest_main
halt:
    wfi
    b       halt

// PSCI CPU_ON target: x0 = vCPU index (our context argument).
    .text
    .global guest_secondary_entry
guest_secondary_entry:
    mov     x19, x0
    adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    add     x2, x0, #1
    mov     x3, #STACK_SIZE
    madd    x1, x2, x3, x1
    mov     sp, x1
    adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    bl      guest_secondary_main
    b       halt

    .global guest_secondary_entry_address
guest_secondary_entry_address:
    adrp    x0, guest_secondary_entry
    add     x0, x0, :lo12:guest_secondary_entry
    ret

    .macro save_all
    sub     sp, sp, #256
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    .endm

    .macro restore_all
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #256
    eret
    .endm

    .macro vector target
    .balign 0x80
    b       \target
    .endm

    .balign 0x800
guest_vectors:
    vector  sync_common         // current EL, SP_EL0
    vector  irq_common
    vector  sync_common
    vector  sync_common
    vector  sync_common         // current EL, SP_ELx
    vector  irq_common
    vector  sync_common
    vector  sync_common
    vector  sync_common         // lower EL (unused: no EL0 here)
    vector  irq_common
    vector  sync_common
    vector  sync_common
    vector  sync_common
    vector  irq_common
    vector  sync_common
    vector  sync_common

sync_common:
    save_all
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    mrs     x2, far_el1
    bl      guest_exception     // returns where to resume
    msr     elr_el1, x0
    restore_all

irq_common:
    save_all
    bl      guest_irq
    restore_all

    .global guest_hypercall
guest_hypercall:
    mov     x16, x5
    hvc     #0xEA1
    ret
    .global guest_hvc0
guest_hvc0:
    hvc     #0
    ret
    .global guest_smc0
guest_smc0:
    smc     #0
    ret
    .global guest_hvc1
guest_hvc1:
    mov     x0, #0
    hvc     #1
    ret
    .global guest_write_actlr
guest_write_actlr:
    msr     actlr_el1, x0
    ret
    .global guest_dc_cisw
guest_dc_cisw:
    mov     x0, #0
    dc      cisw, x0
    ret
    .global guest_read_actlr
guest_read_actlr:
    mov     x0, #0
    mrs     x0, actlr_el1
    ret
    .global guest_read_cntp_ctl
guest_read_cntp_ctl:
    mov     x0, #0
    mrs     x0, cntp_ctl_el0
    ret
    .global guest_wfi
guest_wfi:
    dsb     sy
    wfi
    ret
    .global guest_irq_enable
guest_irq_enable:
    msr     daifclr, #2
    isb
    ret
    .global guest_irq_disable
guest_irq_disable:
    msr     daifset, #2
    ret
#endif
