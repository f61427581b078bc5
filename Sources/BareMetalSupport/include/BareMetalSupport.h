// The C library subset every bare-metal image of Tern links: the hypervisor and our own guests.
#pragma once
#include <stdint.h>
#include <stddef.h>

// Spin locks shared between CPUs; 0 is free, as a zeroed global or field starts.
// bm_lock/bm_unlock: test-and-set, for the run-queue locks and the global leaves.
void bm_lock(volatile uint32_t *lock);
void bm_unlock(volatile uint32_t *lock);
// bm_ticket_lock/bm_ticket_unlock: a fair ticket lock, for the per-domain locks (SpinLocked).
void bm_ticket_lock(volatile uint32_t *lock);
#if defined(__aarch64__) && !defined(__linux__)
// Inline: three instructions where the lock is dropped, no call.
static inline __attribute__((always_inline)) void bm_ticket_unlock(volatile uint32_t *lock) {
    // Only the holder writes the served half, so a plain increment with release order is enough.
    uint16_t served = *(volatile uint16_t *)lock;
    __asm__ volatile("stlrh %w0, [%1]" :: "r"((uint32_t)(uint16_t)(served + 1)), "r"(lock) : "memory");
}
// One attempt at a test-and-set lock, inline: nonzero when it was taken. The caller that fails waits
// in bm_lock, out of line, where it can count how long.
static inline __attribute__((always_inline)) int bm_trylock_inline(volatile uint32_t *lock) {
    uint32_t tmp, one = 1;
    __asm__ volatile(
        "   ldaxr %w0, [%1]\n"
        "   cbnz  %w0, 1f\n"
        "   stxr  %w0, %w2, [%1]\n"
        "1:\n"
        : "=&r"(tmp) : "r"(lock), "r"(one) : "memory");
    return tmp == 0;
}
// bm_unlock without the call, for the measured paths (inlining it everywhere costs the trap path
// registers).
static inline __attribute__((always_inline)) void bm_unlock_inline(volatile uint32_t *lock) {
    __asm__ volatile("stlr wzr, [%0]" :: "r"(lock) : "memory");
}
#endif
uint64_t bm_image_start(void);
uint64_t bm_image_end(void);
// Gives the heap the RAM at [base, base + size) (page aligned); returns 0 when it has no room for more
// regions. bm_heap_headroom: the most bytes never yet handed out in one region.
int bm_heap_add(uint64_t base, uint64_t size);
uint64_t bm_heap_headroom(void);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
