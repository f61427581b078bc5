// Single instructions and register-file moves that C with -mgeneral-regs-only cannot write:
// barriers, address translation, firmware calls, FP/SIMD and EL1 state.
#if defined(__aarch64__) && !defined(__linux__)
    .arch_extension fp
    .arch_extension simd
    .text

    .global tern_isb
tern_isb:   isb
    ret
    .global tern_dsb_sy
tern_dsb_sy: dsb sy
    ret
    .global tern_wfi
tern_wfi:   dsb sy
    wfi
    ret
    .global tern_tlbi_vmalls12e1is
tern_tlbi_vmalls12e1is:
    dsb     ishst
    tlbi    vmalls12e1is
    dsb     ish
    isb
    ret
    // One stage-2 page of the current VMID gone (x0: its IPA), on every CPU: the stage-2 entry, then
    // whatever combined stage-1+2 entries were cached from it.
    .global tern_tlbi_ipa_is
tern_tlbi_ipa_is:
    dsb     ishst
    lsr     x0, x0, #12
    tlbi    ipas2e1is, x0
    dsb     ish
    tlbi    vmalle1is
    dsb     ish
    isb
    ret
    .global tern_tlbi_alle2
tern_tlbi_alle2:
    dsb     ishst
    tlbi    alle2is
    dsb     ish
    isb
    ret

// PAR_EL1 belongs to the guest: the translation result is read and the guest's value put back.
    .global tern_at_s12e1
tern_at_s12e1:
    mrs     x2, par_el1
    cbnz    w1, 1f
    at      s12e1r, x0
    b       2f
1:  at      s12e1w, x0
2:  isb
    mrs     x0, par_el1
    msr     par_el1, x2
    ret

    .global tern_smc
tern_smc:
    smc     #0
    ret
    .global tern_hvc
tern_hvc:
    hvc     #0
    ret

    .global tern_fp_save
tern_fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret

    .global tern_fp_restore
tern_fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpsr, x1
    msr     fpcr, x2
    ret

// Field order matches tern_el1_state in TernArchAsm.h.
    .macro save2 a, b, off
    mrs     x1, \a
    mrs     x2, \b
    stp     x1, x2, [x0, #\off]
    .endm
    .macro load2 a, b, off
    ldp     x1, x2, [x0, #\off]
    msr     \a, x1
    msr     \b, x2
    .endm

    .global tern_el1_save
tern_el1_save:
    save2   sctlr_el1, ttbr0_el1, 0
    save2   ttbr1_el1, tcr_el1, 16
    save2   mair_el1, amair_el1, 32
    save2   vbar_el1, sp_el1, 48
    save2   elr_el1, spsr_el1, 64
    save2   esr_el1, far_el1, 80
    save2   afsr0_el1, afsr1_el1, 96
    save2   contextidr_el1, tpidr_el0, 112
    save2   tpidr_el1, tpidrro_el0, 128
    save2   cpacr_el1, cntkctl_el1, 144
    save2   par_el1, csselr_el1, 160
    save2   mdscr_el1, cntv_ctl_el0, 176
    save2   cntv_cval_el0, vmpidr_el2, 192
    // The virtual timer must not fire for whoever runs next.
    msr     cntv_ctl_el0, xzr
    ret

    .global tern_el1_restore
tern_el1_restore:
    load2   sctlr_el1, ttbr0_el1, 0
    load2   ttbr1_el1, tcr_el1, 16
    load2   mair_el1, amair_el1, 32
    load2   vbar_el1, sp_el1, 48
    load2   elr_el1, spsr_el1, 64
    load2   esr_el1, far_el1, 80
    load2   afsr0_el1, afsr1_el1, 96
    load2   contextidr_el1, tpidr_el0, 112
    load2   tpidr_el1, tpidrro_el0, 128
    load2   cpacr_el1, cntkctl_el1, 144
    load2   par_el1, csselr_el1, 160
    ldr     x1, [x0, #176]
    msr     mdscr_el1, x1
    ldp     x1, x2, [x0, #192]
    msr     cntv_cval_el0, x1
    msr     vmpidr_el2, x2
    ldr     x1, [x0, #184]
    msr     cntv_ctl_el0, x1
    isb
    ret

    .global tern_vgic_save
tern_vgic_save:
    save2   ich_lr0_el2, ich_lr1_el2, 0
    save2   ich_lr2_el2, ich_lr3_el2, 16
    save2   ich_vmcr_el2, ich_ap1r0_el2, 32
    ret

    .global tern_vgic_restore
tern_vgic_restore:
    load2   ich_lr0_el2, ich_lr1_el2, 0
    load2   ich_lr2_el2, ich_lr3_el2, 16
    load2   ich_vmcr_el2, ich_ap1r0_el2, 32
    ret

    .global tern_write_lr
tern_write_lr:
    cmp     w0, #1
    b.eq    1f
    cmp     w0, #2
    b.eq    2f
    cmp     w0, #3
    b.eq    3f
    msr     ich_lr0_el2, x1
    ret
1:  msr     ich_lr1_el2, x1
    ret
2:  msr     ich_lr2_el2, x1
    ret
3:  msr     ich_lr3_el2, x1
    ret

    .global tern_read_lr
tern_read_lr:
    cmp     w0, #1
    b.eq    1f
    cmp     w0, #2
    b.eq    2f
    cmp     w0, #3
    b.eq    3f
    mrs     x0, ich_lr0_el2
    ret
1:  mrs     x0, ich_lr1_el2
    ret
2:  mrs     x0, ich_lr2_el2
    ret
3:  mrs     x0, ich_lr3_el2
    ret
#endif
