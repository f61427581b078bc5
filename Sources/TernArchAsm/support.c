// The hypervisor's few plain-C primitives: bulk moves of physical memory and the UART's characters.
#include "TernArchAsm.h"
#include "BareMetalSupport.h"
#if defined(__aarch64__) && !defined(__linux__)

void tern_copy(uint64_t dst, uint64_t src, uint64_t n) { memmove((void *)dst, (const void *)src, n); }
void tern_zero(uint64_t dst, uint64_t n) {
    if (((dst | n) & 15) == 0) {
        for (uint64_t *p = (uint64_t *)dst, *e = (uint64_t *)(dst + n); p < e; p += 2) { p[0] = 0; p[1] = 0; }
        return;
    }
    memset((void *)dst, 0, n);
}

/* Bit operations on memory a guest shares with us (shared_info, vcpu_info): atomic, because the guest
 * changes the same words at the same time. */
int tern_test_and_set_bit(uint64_t pa, uint32_t bit) {
    uint64_t *w = (uint64_t *)(uintptr_t)(pa + (bit / 64) * 8), m = 1ull << (bit % 64);
    return (__atomic_fetch_or(w, m, __ATOMIC_SEQ_CST) & m) != 0;
}
int tern_test_and_clear_bit(uint64_t pa, uint32_t bit) {
    uint64_t *w = (uint64_t *)(uintptr_t)(pa + (bit / 64) * 8), m = 1ull << (bit % 64);
    return (__atomic_fetch_and(w, ~m, __ATOMIC_SEQ_CST) & m) != 0;
}
int tern_test_bit(uint64_t pa, uint32_t bit) {
    uint64_t *w = (uint64_t *)(uintptr_t)(pa + (bit / 64) * 8);
    return (__atomic_load_n(w, __ATOMIC_ACQUIRE) >> (bit % 64)) & 1;
}
uint8_t tern_exchange8(uint64_t pa, uint8_t v) {
    return __atomic_exchange_n((uint8_t *)(uintptr_t)pa, v, __ATOMIC_SEQ_CST);
}
void tern_memory_barrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

volatile uint64_t tern_uart_base = 0x09000000;

void tern_uart_putc(char c) {
    volatile uint32_t *u = (volatile uint32_t *)tern_uart_base;
    while (u[0x18 / 4] & (1u << 5)) {}
    u[0] = (uint32_t)(unsigned char)c;
}
int tern_uart_getc(void) {
    volatile uint32_t *u = (volatile uint32_t *)tern_uart_base;
    if (u[0x18 / 4] & (1u << 4)) return -1;
    return (int)(u[0] & 0xff);
}
void tern_uart_enable_receive_interrupt(void) {
    volatile uint32_t *u = (volatile uint32_t *)tern_uart_base;
    u[0x44 / 4] = 0x7ff;                       /* clear whatever is latched */
    u[0x38 / 4] |= (1u << 4) | (1u << 6);      /* RXIM, RTIM */
}
int putchar(int c) { tern_uart_putc((char)c); return c; }

#endif

#if defined(__aarch64__) && !defined(__linux__)
uint64_t tern_secondary_entry_address(void) { return (uint64_t)&tern_secondary_entry; }
#endif
