// What Embedded Swift expects from a C library, for the hypervisor and our guests alike: memory
// routines, a small heap and a spinlock. Each image brings its own putchar.
#include "BareMetalSupport.h"
#if defined(__aarch64__) && !defined(__linux__)

void *memset(void *d, int c, size_t n) {
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *p = d; const unsigned char *q = s;
    if ((((uintptr_t)p | (uintptr_t)q | n) & 7) == 0) {
        uint64_t *p8 = (uint64_t *)p; const uint64_t *q8 = (const uint64_t *)q;
        for (size_t i = 0; i < n / 8; i++) p8[i] = q8[i];
        return d;
    }
    while (n--) *p++ = *q++;
    return d;
}
void *memmove(void *d, const void *s, size_t n) {
    unsigned char *p = d; const unsigned char *q = s;
    if (p < q) { while (n--) *p++ = *q++; }
    else { p += n; q += n; while (n--) *--p = *--q; }
    return d;
}
int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++) if (*p != *q) return *p - *q;
    return 0;
}
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

// A test-and-set lock: whoever runs when it is free takes it. Not fair, but it never waits for one
// particular CPU, which matters when Tern's own CPUs are threads of a busier host (QEMU here).
void bm_lock(volatile uint32_t *lock) {
    uint32_t tmp, one = 1;
    __asm__ volatile(
        "   sevl\n"
        "1: wfe\n"
        "2: ldaxr %w0, [%1]\n"
        "   cbnz  %w0, 1b\n"
        "   stxr  %w0, %w2, [%1]\n"
        "   cbnz  %w0, 2b\n"
        : "=&r"(tmp) : "r"(lock), "r"(one) : "memory");
}
void bm_unlock(volatile uint32_t *lock) { __asm__ volatile("stlr wzr, [%0]" :: "r"(lock) : "memory"); }

// A ticket lock, fair under contention: the high half of the word hands out tickets, the low half is
// the ticket being served. A waiter sleeps in WFE on its exclusive read of the served half, so the
// unlocking store wakes it. Only taking a ticket may retry (its exclusive store); once a CPU holds a
// ticket it is served in turn, so no CPU can be starved by the others.
void bm_ticket_lock(volatile uint32_t *lock) {
    uint32_t ticket, next, failed, served;
    __asm__ volatile(
        "1: ldaxr  %w0, [%4]\n"
        "   add    %w1, %w0, #0x10000\n"
        "   stxr   %w2, %w1, [%4]\n"
        "   cbnz   %w2, 1b\n"
        "   eor    %w1, %w0, %w0, ror #16\n"       // free when served == ticket
        "   cbz    %w1, 3f\n"
        "   sevl\n"
        "2: wfe\n"
        "   ldaxrh %w3, [%4]\n"
        "   eor    %w1, %w3, %w0, lsr #16\n"
        "   cbnz   %w1, 2b\n"
        "3:\n"
        : "=&r"(ticket), "=&r"(next), "=&r"(failed), "=&r"(served) : "r"(lock) : "memory");
}

// The heap: power-of-two size classes with free lists, carved from regions: the one the linker
// reserves, then any the hypervisor adds from RAM as it needs (bm_heap_add), so the tables of many
// domains fit without every machine paying for them. free() gets only the pointer, so each block's
// class is kept in a byte map over its region (the static region's in .bss, an added one's at its start).
extern char __heap_start[], __heap_end[], __image_start[], __image_end[];
#define HEAP_GRAIN 16
#define HEAP_REGIONS 16
struct heap_region { uint64_t start, end, next; uint8_t *map; };
static struct heap_region regions[HEAP_REGIONS];
static int region_count;
static void *free_lists[24];
static uint8_t class_map[0x400000 / HEAP_GRAIN];
static volatile uint32_t heap_lock;

uint64_t bm_image_start(void) { return (uint64_t)__image_start; }
uint64_t bm_image_end(void) { return (uint64_t)__image_end; }

static void heap_init_locked(void) {
    if (region_count) return;
    regions[0] = (struct heap_region){(uint64_t)__heap_start, (uint64_t)__heap_end, (uint64_t)__heap_start, class_map};
    region_count = 1;
}

int bm_heap_add(uint64_t base, uint64_t size) {
    uint64_t map_size = (size / HEAP_GRAIN + 4095) & ~(uint64_t)4095;
    if (size <= map_size) return 0;
    bm_lock(&heap_lock);
    heap_init_locked();
    if (region_count == HEAP_REGIONS) { bm_unlock(&heap_lock); return 0; }
    memset((void *)base, 0, map_size);
    regions[region_count++] = (struct heap_region){base, base + size, base + map_size, (uint8_t *)base};
    bm_unlock(&heap_lock);
    return 1;
}

uint64_t bm_heap_headroom(void) {
    bm_lock(&heap_lock);
    heap_init_locked();
    // The largest untouched tail of one region: a block never spans two.
    uint64_t room = 0;
    for (int i = 0; i < region_count; i++) {
        uint64_t tail = regions[i].end - regions[i].next;
        if (tail > room) room = tail;
    }
    bm_unlock(&heap_lock);
    return room;
}

int posix_memalign(void **out, size_t align, size_t size) {
    size_t need = size > align ? size : align;
    int c = 4;
    while (((size_t)1 << c) < need) c++;
    if (c >= 24) return 12;
    bm_lock(&heap_lock);
    heap_init_locked();
    void *p = free_lists[c];
    if (p) {
        free_lists[c] = *(void **)p;
    } else {
        uint64_t block = (uint64_t)1 << c;
        for (int i = 0; i < region_count && !p; i++) {
            struct heap_region *r = &regions[i];
            // Blocks of a class are aligned to their size, which covers any alignment up to it.
            uint64_t at = (r->next + block - 1) & ~(block - 1);
            if (at + block > r->end) continue;
            r->next = at + block;
            r->map[(at - r->start) / HEAP_GRAIN] = (uint8_t)c;
            p = (void *)at;
        }
        if (!p) { bm_unlock(&heap_lock); return 12; }
    }
    bm_unlock(&heap_lock);
    *out = p;
    return 0;
}

void free(void *p) {
    if (!p) return;
    bm_lock(&heap_lock);
    for (int i = 0; i < region_count; i++) {
        struct heap_region *r = &regions[i];
        if ((uint64_t)p < r->start || (uint64_t)p >= r->end) continue;
        int c = r->map[((uint64_t)p - r->start) / HEAP_GRAIN];
        *(void **)p = free_lists[c];
        free_lists[c] = p;
        break;
    }
    bm_unlock(&heap_lock);
}

// Embedded Swift's hashing asks for randomness; nothing here needs seeded hashing.
void arc4random_buf(void *buf, size_t n) { memset(buf, 0x5a, n); }
#endif
