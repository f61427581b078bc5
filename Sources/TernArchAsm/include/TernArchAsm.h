// The hardware edge of Tern: the register frame the exception vectors fill, EL1 state that must follow
// a vCPU between physical CPUs, and one-instruction accessors that Swift cannot express itself.
#pragma once
#include <stdint.h>
#include <stddef.h>

// Filled by vectors.S on every exit from a guest; its layout is shared with the assembly.
typedef struct tern_frame {
    uint64_t x[31];
    uint64_t sp_el0;
    uint64_t elr;
    uint64_t spsr;
    uint64_t esr;       // ESR_EL2 of this exit, read by the vectors so the trap path needs no call for it
    void *owner;        // the VCPU this frame belongs to (unretained): the trap path's way back to it
} tern_frame;

// What a guest's EL1 owns and the hypervisor must swap when another vCPU takes the physical CPU.
typedef struct tern_el1_state {
    uint64_t sctlr, ttbr0, ttbr1, tcr, mair, amair, vbar, sp_el1, elr, spsr;
    uint64_t esr, far, afsr0, afsr1, contextidr, tpidr_el0, tpidr_el1, tpidrro_el0;
    uint64_t cpacr, cntkctl, par, csselr, mdscr;
    uint64_t cntv_ctl, cntv_cval;
    uint64_t vmpidr;
} tern_el1_state;

typedef struct tern_fp_state {
    __uint128_t q[32];
    uint64_t fpsr, fpcr;
} tern_fp_state;

typedef struct tern_vgic_state {
    uint64_t lr[4];
    uint64_t vmcr;
    uint64_t ap1r0;
} tern_vgic_state;

#if defined(__aarch64__) && !defined(__linux__)
#define TERN_SYSREG(name)                                                            \
    static inline __attribute__((always_inline)) uint64_t read_##name(void) {         \
        uint64_t v; __asm__ volatile("mrs %0, " #name : "=r"(v)); return v;          \
    }                                                                                \
    static inline __attribute__((always_inline)) void write_##name(uint64_t v) {     \
        __asm__ volatile("msr " #name ", %0" ::"r"(v));                              \
    }
#else
// The host build never touches hardware; these keep the module importable there.
#define TERN_SYSREG(name)                                                            \
    static inline uint64_t read_##name(void) { return 0; }                          \
    static inline void write_##name(uint64_t v) { (void)v; }
#endif

TERN_SYSREG(esr_el2)
TERN_SYSREG(far_el2)
TERN_SYSREG(hpfar_el2)
TERN_SYSREG(elr_el2)
TERN_SYSREG(spsr_el2)
TERN_SYSREG(hcr_el2)
TERN_SYSREG(vttbr_el2)
TERN_SYSREG(vtcr_el2)
TERN_SYSREG(tpidr_el2)
TERN_SYSREG(mpidr_el1)
TERN_SYSREG(midr_el1)
TERN_SYSREG(id_aa64mmfr1_el1)
TERN_SYSREG(cntfrq_el0)
TERN_SYSREG(cntpct_el0)
TERN_SYSREG(cntvct_el0)
TERN_SYSREG(cnthp_ctl_el2)
TERN_SYSREG(cnthp_cval_el2)
TERN_SYSREG(cnthctl_el2)
TERN_SYSREG(cntvoff_el2)
TERN_SYSREG(cntv_ctl_el0)
TERN_SYSREG(cntv_cval_el0)
TERN_SYSREG(par_el1)
TERN_SYSREG(esr_el1)
TERN_SYSREG(elr_el1)
TERN_SYSREG(spsr_el1)
TERN_SYSREG(far_el1)
TERN_SYSREG(vbar_el1)
TERN_SYSREG(sctlr_el1)
TERN_SYSREG(vmpidr_el2)
TERN_SYSREG(mdcr_el2)
TERN_SYSREG(cptr_el2)
TERN_SYSREG(icc_iar1_el1)
TERN_SYSREG(icc_eoir1_el1)
TERN_SYSREG(icc_pmr_el1)
TERN_SYSREG(icc_igrpen1_el1)
TERN_SYSREG(icc_sgi1r_el1)
TERN_SYSREG(icc_sre_el2)
TERN_SYSREG(icc_ctlr_el1)
TERN_SYSREG(ich_hcr_el2)
TERN_SYSREG(ich_vmcr_el2)
TERN_SYSREG(ich_vtr_el2)
TERN_SYSREG(ich_misr_el2)
TERN_SYSREG(ich_eisr_el2)
TERN_SYSREG(ich_elrsr_el2)
TERN_SYSREG(ich_ap1r0_el2)
TERN_SYSREG(ich_lr0_el2)
TERN_SYSREG(ich_lr1_el2)
TERN_SYSREG(ich_lr2_el2)
TERN_SYSREG(ich_lr3_el2)

// Barriers and single instructions.
void tern_isb(void);
void tern_dsb_sy(void);
void tern_wfi(void);
void tern_tlbi_vmalls12e1is(void);
void tern_tlbi_alle2(void);
void tern_tlbi_ipa_is(uint64_t ipa);
/* New stage-2 entries are seen by every CPU's table walker before the guest can use them. */
static inline __attribute__((always_inline)) void tern_stage2_sync(void) { __asm__ volatile("dsb ishst\n isb" ::: "memory"); }
/* Stores before an SGI are seen by the CPU it interrupts (the SGI register write is no memory access). */
static inline __attribute__((always_inline)) void tern_dsb_ishst(void) { __asm__ volatile("dsb ishst" ::: "memory"); }
// Translates a guest virtual address with the current vCPU's stage 1 and stage 2; returns PAR_EL1
// (bit 0 set on failure). `write` selects the write-permission check.
uint64_t tern_at_s12e1(uint64_t va, int write);
// Firmware call (PSCI) through the conduit the host DTB names.
uint64_t tern_smc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
uint64_t tern_hvc(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);

void tern_el1_save(tern_el1_state *s);
void tern_el1_restore(const tern_el1_state *s);
void tern_fp_save(tern_fp_state *s);
void tern_fp_restore(const tern_fp_state *s);
void tern_vgic_save(tern_vgic_state *s);
void tern_vgic_restore(const tern_vgic_state *s);
void tern_write_lr(int n, uint64_t v);
uint64_t tern_read_lr(int n);

// Enters (or resumes) a guest from the given frame on a fresh hypervisor stack; never returns.
_Noreturn void tern_enter_guest(tern_frame *frame, uint64_t stack_top);
// Enables the EL2 MMU with the given tables and the primary CPU's saved settings.
void tern_enable_mmu(uint64_t ttbr0, uint64_t tcr, uint64_t mair);
// Entry point for secondary CPUs, handed to PSCI CPU_ON.
void tern_secondary_entry(void);
uint64_t tern_stack_top(uint64_t cpu);


// Each physical CPU has a TERN_STACK_SIZE stack aligned to its size (boot.S, hypervisor.ld), whose top
// 16 bytes are the CPU's own words: its object (the hypervisor's PhysicalCPU, unretained) and its index.
// Code on any CPU finds them from its stack pointer in three instructions, whatever the CPU's MPIDR.
// (boot.S's STACK_SIZE and metal/hypervisor.ld repeat these; the linker script asserts them, and the
// boot refuses TernLimits.maximumCPUs above TERN_MAXIMUM_CPUS.)
#define TERN_MAXIMUM_CPUS 32
#define TERN_STACK_SIZE 0x8000
#if defined(__aarch64__)
static inline __attribute__((always_inline)) uint64_t *tern_this_cpu_words(void) {
    uint64_t sp;
    __asm__("mov %0, sp" : "=r"(sp));
    return (uint64_t *)((sp | (TERN_STACK_SIZE - 1)) - 15);
}
#endif

// Console output, a character at a time; `tern_uart_base` is set once the DTB is read.
extern volatile uint64_t tern_uart_base;
void tern_uart_putc(char c);
int tern_uart_getc(void);
void tern_uart_enable_receive_interrupt(void);


// Typed memory access to host physical memory (identity-mapped).
static inline __attribute__((always_inline)) uint64_t tern_load64(uint64_t pa) { return *(volatile uint64_t *)(uintptr_t)pa; }
static inline __attribute__((always_inline)) void tern_store64(uint64_t pa, uint64_t v) { *(volatile uint64_t *)(uintptr_t)pa = v; }
static inline __attribute__((always_inline)) uint32_t tern_load32(uint64_t pa) { return *(volatile uint32_t *)(uintptr_t)pa; }
static inline __attribute__((always_inline)) void tern_store32(uint64_t pa, uint32_t v) { *(volatile uint32_t *)(uintptr_t)pa = v; }
static inline __attribute__((always_inline)) uint8_t tern_load8(uint64_t pa) { return *(volatile uint8_t *)(uintptr_t)pa; }
static inline __attribute__((always_inline)) void tern_store8(uint64_t pa, uint8_t v) { *(volatile uint8_t *)(uintptr_t)pa = v; }
void tern_copy(uint64_t dst, uint64_t src, uint64_t n);
// Bit operations on memory a guest shares with us (shared_info, vcpu_info): atomic, because the guest
// changes the same words at the same time. Inline: they are on the event-channel path.
static inline __attribute__((always_inline)) int tern_test_and_set_bit(uint64_t pa, uint32_t bit) {
    uint64_t *w = (uint64_t *)(uintptr_t)(pa + (bit / 64) * 8), m = 1ull << (bit % 64);
    return (__atomic_fetch_or(w, m, __ATOMIC_SEQ_CST) & m) != 0;
}
static inline __attribute__((always_inline)) int tern_test_and_clear_bit(uint64_t pa, uint32_t bit) {
    uint64_t *w = (uint64_t *)(uintptr_t)(pa + (bit / 64) * 8), m = 1ull << (bit % 64);
    return (__atomic_fetch_and(w, ~m, __ATOMIC_SEQ_CST) & m) != 0;
}
static inline __attribute__((always_inline)) int tern_test_bit(uint64_t pa, uint32_t bit) {
    uint64_t *w = (uint64_t *)(uintptr_t)(pa + (bit / 64) * 8);
    return (__atomic_load_n(w, __ATOMIC_ACQUIRE) >> (bit % 64)) & 1;
}
static inline __attribute__((always_inline)) uint8_t tern_exchange8(uint64_t pa, uint8_t v) {
    return __atomic_exchange_n((uint8_t *)(uintptr_t)pa, v, __ATOMIC_SEQ_CST);
}
// Stores `desired` if the word still holds `expected`; returns what it held (== expected on success).
static inline __attribute__((always_inline)) uint32_t tern_compare_exchange32(uint64_t pa, uint32_t expected, uint32_t desired) {
    __atomic_compare_exchange_n((uint32_t *)(uintptr_t)pa, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}
static inline __attribute__((always_inline)) void tern_memory_barrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
// A sequentially consistent load (LDAR): no earlier atomic or store-release can pass it, and no later
// access either. (An acquire load may be LDAPR, which an earlier store-release can pass.)
static inline __attribute__((always_inline)) uint64_t tern_load_ordered64(uint64_t pa) {
    return __atomic_load_n((uint64_t *)(uintptr_t)pa, __ATOMIC_SEQ_CST);
}
static inline __attribute__((always_inline)) uint32_t tern_load_ordered32(uint64_t pa) {
    return __atomic_load_n((uint32_t *)(uintptr_t)pa, __ATOMIC_SEQ_CST);
}
void tern_dcache_range(uint64_t pa, uint64_t n, int clean, int invalidate);
void tern_zero(uint64_t dst, uint64_t n);

TERN_SYSREG(vpidr_el2)
// The physical address secondary CPUs start at.
uint64_t tern_secondary_entry_address(void);
