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

// The frame at x0: x2-x18, which every exit stores (the handlers may clobber them) ...
    .macro store_x2_x18
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    str     x18, [x0, #144]
    .endm

// ... x19-x29 (callee-saved: the handlers give them back), at \base ...
    .macro store_x19_x29 base
    stp     x19, x20, [\base, #152]
    stp     x21, x22, [\base, #168]
    stp     x23, x24, [\base, #184]
    stp     x25, x26, [\base, #200]
    stp     x27, x28, [\base, #216]
    str     x29, [\base, #232]
    .endm

// ... and x0/x1 (pushed by the vector), x30 and the exception registers; then tern_trap.
    .macro store_rest_and_trap
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
    .endm

// Resuming the frame at x0: exception registers and x2-x18 here, x19-x29 only where needed, x30,
// then x0/x1 last.
    .macro load_state_x2_x18
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
    .endm

    .macro load_x19_x29 base
    ldp     x19, x20, [\base, #152]
    ldp     x21, x22, [\base, #168]
    ldp     x23, x24, [\base, #184]
    ldp     x25, x26, [\base, #200]
    ldp     x27, x28, [\base, #216]
    ldr     x29, [\base, #232]
    .endm

    .macro load_x30_x0_x1_and_return
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    .endm

// tern_trap returns the frame to resume, which is the one that trapped, or 0: the vCPU leaves the CPU,
// this CPU's run-queue lock is held, and tern_schedule (once the frame is whole) picks what runs next.
guest_trap_common:
    store_x2_x18
    store_x19_x29 x0
    store_rest_and_trap
    cbnz    x0, resume
    bl      tern_schedule
    b       resume

// A hypercall reads and writes x0-x4 and x16 only, and the handlers it reaches preserve x19-x29 as the
// calling convention says. So while the vCPU stays, its x19-x29 stay in the registers and are neither
// stored nor reloaded. When it leaves the CPU they go into its frame before its run-queue lock is let
// go: until then no other CPU can pick the vCPU, so no CPU ever resumes a frame without them, and no
// late store overwrites newer values. (Frames live as long as their scheduler slot.)
hvc_trap:
    store_x2_x18
    mov     x1, #0
    store_rest_and_trap
    cbz     x0, hvc_leave
    load_state_x2_x18
    load_x30_x0_x1_and_return
hvc_leave:
    mrs     x0, tpidr_el2
    store_x19_x29 x0
    bl      tern_schedule
    b       resume

    .global tern_enter_guest
tern_enter_guest:
    mov     sp, x1
resume:
    msr     tpidr_el2, x0
    load_state_x2_x18
    load_x19_x29 x0
    load_x30_x0_x1_and_return

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
