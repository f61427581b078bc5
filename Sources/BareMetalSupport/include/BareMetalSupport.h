// The C library subset every bare-metal image of Tern links: the hypervisor and our own guests.
#pragma once
#include <stdint.h>
#include <stddef.h>

// A spinlock shared between CPUs (0 = free).
void bm_lock(volatile uint32_t *lock);
void bm_unlock(volatile uint32_t *lock);
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
