// The hardware edge of Tern's own guests: entry, exception vectors, the hypercall and PSCI
// instructions, and the few EL1 registers a small guest touches.
#pragma once
#include <stdint.h>
#include <stddef.h>

// hvc #0xEA1 with the number in x16, arguments in x0-x4; returns x0.
int64_t guest_hypercall(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t number);
// SMCCC calls (PSCI) through hvc #0 or smc #0.
int64_t guest_hvc0(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
int64_t guest_smc0(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
// An hvc with an immediate no hypervisor answers.
int64_t guest_hvc1(void);
// Deliberately forbidden instructions, for the hostile guest.
uint64_t guest_read_actlr(void);
void guest_write_actlr(uint64_t v);
void guest_dc_cisw(void);
uint64_t guest_read_cntp_ctl(void);
uint64_t guest_secondary_entry_address(void);

void guest_wfi(void);
#if defined(__aarch64__) && !defined(__linux__)
static inline void guest_wfe(void) { __asm__ volatile("wfe" ::: "memory"); }
#else
static inline void guest_wfe(void) {}
#endif
void guest_irq_enable(void);
void guest_irq_disable(void);

#if defined(__aarch64__) && !defined(__linux__)
#define GUEST_SYSREG(name)                                                           \
    static inline uint64_t read_##name(void) {                                      \
        uint64_t v; __asm__ volatile("mrs %0, " #name : "=r"(v)); return v;          \
    }                                                                                \
    static inline void write_##name(uint64_t v) { __asm__ volatile("msr " #name ", %0; isb" ::"r"(v)); }
#else
#define GUEST_SYSREG(name)                                                           \
    static inline uint64_t read_##name(void) { return 0; }                          \
    static inline void write_##name(uint64_t v) { (void)v; }
#endif
GUEST_SYSREG(cntvct_el0)
GUEST_SYSREG(cntfrq_el0)
GUEST_SYSREG(cntv_ctl_el0)
GUEST_SYSREG(cntv_cval_el0)
GUEST_SYSREG(cntp_ctl_el0)
GUEST_SYSREG(cntp_cval_el0)
GUEST_SYSREG(cntp_tval_el0)
GUEST_SYSREG(mpidr_el1)
GUEST_SYSREG(icc_iar1_el1)
GUEST_SYSREG(icc_eoir1_el1)
GUEST_SYSREG(icc_pmr_el1)
GUEST_SYSREG(icc_igrpen1_el1)
GUEST_SYSREG(icc_sre_el1)
GUEST_SYSREG(icc_sgi1r_el1)

static inline uint8_t guest_exchange8(uint64_t a, uint8_t v) { return __atomic_exchange_n((uint8_t *)(uintptr_t)a, v, __ATOMIC_SEQ_CST); }
static inline uint64_t guest_exchange64(uint64_t a, uint64_t v) { return __atomic_exchange_n((uint64_t *)(uintptr_t)a, v, __ATOMIC_SEQ_CST); }
static inline uint64_t guest_fetch_or64(uint64_t a, uint64_t v) { return __atomic_fetch_or((uint64_t *)(uintptr_t)a, v, __ATOMIC_SEQ_CST); }
static inline uint64_t guest_fetch_add64(uint64_t a, uint64_t v) { return __atomic_fetch_add((uint64_t *)(uintptr_t)a, v, __ATOMIC_SEQ_CST); }
static inline uint64_t guest_fetch_and64(uint64_t a, uint64_t v) { return __atomic_fetch_and((uint64_t *)(uintptr_t)a, v, __ATOMIC_SEQ_CST); }
static inline uint8_t guest_load8(uint64_t a) { return *(volatile uint8_t *)(uintptr_t)a; }
static inline void guest_store8(uint64_t a, uint8_t v) { *(volatile uint8_t *)(uintptr_t)a = v; }
static inline uint16_t guest_load16(uint64_t a) { return *(volatile uint16_t *)(uintptr_t)a; }
static inline void guest_store16(uint64_t a, uint16_t v) { *(volatile uint16_t *)(uintptr_t)a = v; }
static inline uint32_t guest_load32(uint64_t a) { return *(volatile uint32_t *)(uintptr_t)a; }
static inline void guest_store32(uint64_t a, uint32_t v) { *(volatile uint32_t *)(uintptr_t)a = v; }
static inline uint64_t guest_load64(uint64_t a) { return *(volatile uint64_t *)(uintptr_t)a; }
static inline void guest_store64(uint64_t a, uint64_t v) { *(volatile uint64_t *)(uintptr_t)a = v; }
/* Orders memory accesses against another CPU's (the hypervisor's, for shared pages). */
static inline void guest_barrier(void) { __asm__ volatile("dmb ish" ::: "memory"); }

// A hypercall (hvc #0xEA1, number in x16) or SMCCC call (hvc #0) with x19-x29 filled from `seed` around
// it; *broken gets how many of them the hypervisor did not give back. Returns x0.
int64_t guest_hypercall_checked(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t number, uint64_t seed, uint64_t *broken);
int64_t guest_hvc0_checked(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t unused, uint64_t seed, uint64_t *broken);
