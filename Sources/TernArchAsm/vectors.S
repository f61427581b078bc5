// Exception entry and exit at EL2. A guest's general registers go straight into its vCPU's frame
// (TPIDR_EL2 points at it while the guest runs), so switching vCPUs is just returning another frame
// from tern_trap: nothing else is copied on the hot path.
#if defined(__aarch64__) && !defined(__linux__)
#define FRAME_SP_EL0 248
#define FRAME_ELR    256
#define FRAME_ESR    272

    .macro fatal_entry kind
    .balign 0x80
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       hyp_fatal_common
    .endm

    .macro guest_entry kind
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    mov     x1, #\kind
    b       guest_trap_common
    .endm

    .text
    .balign 0x800
    .global tern_vectors
tern_vectors:
    fatal_entry 0       // current EL, SP_EL0: sync
    fatal_entry 1       //   irq
    fatal_entry 2       //   fiq
    fatal_entry 3       //   serror
    fatal_entry 4       // current EL, SP_ELx: sync
    fatal_entry 5       //   irq
    fatal_entry 6       //   fiq
    fatal_entry 7       //   serror
    // lower EL, AArch64: sync. HVCs (hypercalls, PSCI) take a shorter path: see hvc_trap.
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    mrs     x1, esr_el2
    lsr     x1, x1, #26
    cmp     x1, #0x16
    b.eq    hvc_trap
    mov     x1, #0
    b       guest_trap_common
    guest_entry 1       //   irq
    guest_entry 2       //   fiq
    guest_entry 3       //   serror
    guest_entry 4       // lower EL, AArch32: sync
    guest_entry 5       //   irq
    guest_entry 6       //   fiq
    guest_entry 7       //   serror

guest_trap_common:
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    ldp     x2, x3, [sp], #16
    str     x30, [x0, #240]
    mrs     x4, sp_el0
    mrs     x5, elr_el2
    mrs     x6, spsr_el2
    mrs     x7, esr_el2
    stp     x2, x3, [x0, #0]
    str     x4, [x0, #FRAME_SP_EL0]
    stp     x5, x6, [x0, #FRAME_ELR]
    str     x7, [x0, #FRAME_ESR]
    bl      tern_trap               // (frame, kind) -> frame to resume
    b       resume

// A hypercall reads and writes x0-x4 and x16 only, and the handlers it reaches preserve x19-x29 as the
// calling convention says. So while the same vCPU comes back, its x19-x29 stay in the registers and
// are neither stored nor reloaded; if another vCPU is to run, the old frame gets them first (they are
// the guest's again once tern_trap has returned), and the new frame is resumed whole. A frame is
// therefore complete whenever its vCPU is off the CPU.
hvc_trap:
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    str     x18, [x0, #144]
    ldp     x2, x3, [sp], #16
    str     x30, [x0, #240]
    mrs     x4, sp_el0
    mrs     x5, elr_el2
    mrs     x6, spsr_el2
    mrs     x7, esr_el2
    stp     x2, x3, [x0, #0]
    str     x4, [x0, #FRAME_SP_EL0]
    stp     x5, x6, [x0, #FRAME_ELR]
    str     x7, [x0, #FRAME_ESR]
    mov     x1, #0
    bl      tern_trap
    mrs     x1, tpidr_el2           // the frame this exit came from
    cmp     x0, x1
    b.eq    hvc_resume
    stp     x19, x20, [x1, #152]
    stp     x21, x22, [x1, #168]
    stp     x23, x24, [x1, #184]
    stp     x25, x26, [x1, #200]
    stp     x27, x28, [x1, #216]
    str     x29, [x1, #232]
    b       resume
hvc_resume:
    ldr     x2, [x0, #FRAME_SP_EL0]
    ldp     x3, x4, [x0, #FRAME_ELR]
    msr     sp_el0, x2
    msr     elr_el2, x3
    msr     spsr_el2, x4
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldr     x18, [x0, #144]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret

    .global tern_enter_guest
tern_enter_guest:
    mov     sp, x1
resume:
    msr     tpidr_el2, x0
    ldr     x2, [x0, #FRAME_SP_EL0]
    ldp     x3, x4, [x0, #FRAME_ELR]
    msr     sp_el0, x2
    msr     elr_el2, x3
    msr     spsr_el2, x4
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret

// The hypervisor itself faulted: keep every register for the dump, then let Swift report and stop.
hyp_fatal_common:
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
    add     x2, sp, #272
    stp     x30, x2, [sp, #240]     // x30 and the interrupted SP
    mrs     x3, elr_el2
    mrs     x4, spsr_el2
    stp     x3, x4, [sp, #FRAME_ELR]
    mov     x0, sp
    bl      tern_fatal
1:  wfe
    b       1b
#endif
