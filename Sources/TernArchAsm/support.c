// The hypervisor's few plain-C primitives: bulk moves of physical memory and the UART's characters.
#include "TernArchAsm.h"
#include "BareMetalSupport.h"
#if defined(__aarch64__) && !defined(__linux__)

/* Bulk copies (kernels of tens of MiB at domain build, guest buffers on hypercalls) go 64 bytes per
 * iteration when both ends are 8-byte aligned: under emulation every instruction counts. Callers never
 * pass overlapping ranges. */
void tern_copy(uint64_t dst, uint64_t src, uint64_t n) {
    if (((dst | src) & 7) == 0) {
        uint64_t *d = (uint64_t *)dst;
        const uint64_t *s = (const uint64_t *)src;
        for (; n >= 64; n -= 64, d += 8, s += 8) {
            uint64_t a = s[0], b = s[1], c = s[2], e = s[3], f = s[4], g = s[5], h = s[6], i = s[7];
            d[0] = a; d[1] = b; d[2] = c; d[3] = e; d[4] = f; d[5] = g; d[6] = h; d[7] = i;
        }
        for (; n >= 8; n -= 8) *d++ = *s++;
        dst = (uint64_t)d;
        src = (uint64_t)s;
    }
    memcpy((void *)dst, (const void *)src, n);
}
/* Scrubbing freed domain memory (up to GiBs) and zeroing pages: DC ZVA clears a whole block (64 bytes
 * on Cortex-A57) per instruction, when the CPU allows it and the range is block-aligned. */
void tern_zero(uint64_t dst, uint64_t n) {
    uint64_t dczid;
    __asm__ volatile("mrs %0, dczid_el0" : "=r"(dczid));
    uint64_t block = 4ull << (dczid & 0xf);
    if (!(dczid & 0x10) && ((dst | n) & (block - 1)) == 0) {
        for (uint64_t p = dst, e = dst + n; p < e; p += block) __asm__ volatile("dc zva, %0" :: "r"(p) : "memory");
        __asm__ volatile("dsb ish" ::: "memory");
        return;
    }
    if (((dst | n) & 15) == 0) {
        for (uint64_t *p = (uint64_t *)dst, *e = (uint64_t *)(dst + n); p < e; p += 2) { p[0] = 0; p[1] = 0; }
        return;
    }
    memset((void *)dst, 0, n);
}

/* Data-cache maintenance to the point of coherency over [pa, pa + n), for a guest handing memory to
 * or taking it from a device: clean (write back), invalidate (discard), or both. */
void tern_dcache_range(uint64_t pa, uint64_t n, int clean, int invalidate) {
    uint64_t ctr;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    uint64_t line = 4ull << ((ctr >> 16) & 0xf);
    for (uint64_t p = pa & ~(line - 1); p < pa + n; p += line) {
        if (clean && invalidate) __asm__ volatile("dc civac, %0" :: "r"(p) : "memory");
        else if (invalidate) __asm__ volatile("dc ivac, %0" :: "r"(p) : "memory");
        else if (clean) __asm__ volatile("dc cvac, %0" :: "r"(p) : "memory");
    }
    __asm__ volatile("dsb sy" ::: "memory");
}

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
