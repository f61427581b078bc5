// Embedded Swift prints through putchar. A guest's lines go to Xen's console_io hypercall a whole line
// at a time, with one buffer per vCPU so two vCPUs never mix their words.
#include "GuestKitAsm.h"
#if defined(__aarch64__) && !defined(__linux__)
#define LINE 160
static char lines[8][LINE];
static int lengths[8];

/* Under Xen a domU may be refused console_io (only dom0 and dom0less domains with the console get
 * it): then the line goes to the emulated SBSA UART at Xen's GUEST_PL011_BASE instead. */
static int use_uart;

static void uart_line(const char *s, int n) {
    volatile uint32_t *u = (volatile uint32_t *)(uintptr_t)0x22000000;
    for (int i = 0; i < n; i++) {
        while (u[0x18 / 4] & (1u << 5)) {}
        u[0] = (uint32_t)(unsigned char)s[i];
    }
}

static void flush(int cpu) {
    if (lengths[cpu] == 0) return;
    if (!use_uart &&
        guest_hypercall(0 /* CONSOLEIO_write */, (uint64_t)lengths[cpu], (uint64_t)lines[cpu], 0, 0, 18 /* console_io */) < 0)
        use_uart = 1;
    if (use_uart) uart_line(lines[cpu], lengths[cpu]);
    lengths[cpu] = 0;
}

int putchar(int c) {
    int cpu = (int)(read_mpidr_el1() & 7);
    lines[cpu][lengths[cpu]++] = (char)c;
    if (c == '\n' || lengths[cpu] == LINE) flush(cpu);
    return c;
}
#endif
