// Embedded Swift prints through putchar. A guest's lines go to Xen's console_io hypercall a whole line
// at a time, with one buffer per vCPU so two vCPUs never mix their words.
#include "GuestKitAsm.h"
#if defined(__aarch64__) && !defined(__linux__)
#define LINE 160
static char lines[8][LINE];
static int lengths[8];

static void flush(int cpu) {
    if (lengths[cpu] == 0) return;
    guest_hypercall(0 /* CONSOLEIO_write */, (uint64_t)lengths[cpu], (uint64_t)lines[cpu], 0, 0, 18 /* console_io */);
    lengths[cpu] = 0;
}

int putchar(int c) {
    int cpu = (int)(read_mpidr_el1() & 7);
    lines[cpu][lengths[cpu]++] = (char)c;
    if (c == '\n' || lengths[cpu] == LINE) flush(cpu);
    return c;
}
#endif
