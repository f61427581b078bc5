// Where the machine first hands control to Tern: a Linux-style Image header (so QEMU and boot
// loaders place us and pass the DTB in x0), then just enough to reach Swift on a stack.
#if defined(__aarch64__) && !defined(__linux__)
#define STACK_SIZE 0x8000            // TERN_STACK_SIZE (TernArchAsm.h); hypervisor.ld asserts it

    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset: QEMU loads us at RAM base + 2 MiB
    .quad   __image_size            // image_size, including BSS, stacks and heap
    .quad   0x2                     // flags: little endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0

primary_entry:
    mov     x19, x0                 // DTB
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    .Lwrong_el
    adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    mov     x2, #(STACK_SIZE - 16)      // the top 16 bytes are the CPU's own words
    add     sp, x1, x2
    // BSS is not in the file: clear it before any Swift global is touched.
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, tern_vectors
    add     x1, x1, :lo12:tern_vectors
    msr     vbar_el2, x1
    isb
    mov     x0, x19
    bl      tern_main
.Lwrong_el:
    wfe
    b       .Lwrong_el

// PSCI CPU_ON lands here with the MMU off and x0 = the context we passed: the CPU's index.
    .text
    .global tern_secondary_entry
tern_secondary_entry:
    mov     x19, x0
    adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    add     x2, x0, #1
    mov     x3, #STACK_SIZE
    madd    x1, x2, x3, x1
    sub     sp, x1, #16
    adrp    x1, tern_vectors
    add     x1, x1, :lo12:tern_vectors
    msr     vbar_el2, x1
    isb
    adrp    x3, tern_mmu_settings
    add     x3, x3, :lo12:tern_mmu_settings
    ldp     x0, x1, [x3]            // the boot CPU's ttbr0, tcr
    ldr     x2, [x3, #16]           // and mair
    bl      mmu_on
    mov     x0, x19
    bl      tern_secondary_main
3:  wfe
    b       3b

// Records the tables and settings for the secondary CPUs, then turns the MMU on here.
    .global tern_enable_mmu
tern_enable_mmu:
    adrp    x3, tern_mmu_settings
    add     x3, x3, :lo12:tern_mmu_settings
    stp     x0, x1, [x3]
    str     x2, [x3, #16]
    dsb     sy
mmu_on:                             // x0 = ttbr0, x1 = tcr, x2 = mair
    msr     mair_el2, x2
    msr     tcr_el2, x1
    msr     ttbr0_el2, x0
    isb
    tlbi    alle2
    dsb     sy
    isb
    mrs     x5, sctlr_el2
    orr     x5, x5, #(1 << 0)       // M
    orr     x5, x5, #(1 << 2)       // C
    orr     x5, x5, #(1 << 12)      // I
    msr     sctlr_el2, x5
    isb
    ret

    .global tern_stack_top
tern_stack_top:
    adrp    x1, __stacks_start
    add     x1, x1, :lo12:__stacks_start
    add     x2, x0, #1
    mov     x3, #STACK_SIZE
    madd    x0, x2, x3, x1
    sub     x0, x0, #16
    ret

    .data
    .balign 16
    .global tern_mmu_settings
tern_mmu_settings:
    .quad 0, 0, 0, 0
#endif
