// What Tern's small Linux tools (tern-foreign in dom0, tern-disk in the guests) share: raw arm64 Linux
// system calls, output without printf, number parsing and the entry point. No libc, so that an
// initramfs needs nothing else to run them. A tool defines `static int run(long argc, char **argv)`.
typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;
typedef unsigned short u16;

enum { SYS_unlinkat = 35, SYS_faccessat = 48, SYS_openat = 56, SYS_close = 57, SYS_pipe2 = 59, SYS_lseek = 62,
       SYS_read = 63, SYS_write = 64, SYS_pread64 = 67, SYS_exit = 93, SYS_nanosleep = 101,
       SYS_clock_gettime = 113, SYS_setsid = 157, SYS_munmap = 215, SYS_clone = 220, SYS_mmap = 222,
       SYS_ioctl = 29 };

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
}
#define sys(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

__attribute__((unused)) static u64 length(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
__attribute__((unused)) static void put(const char *s) { sys(SYS_write, 1, s, length(s)); }
__attribute__((unused)) static void putHex(u64 v) {
    char b[19] = "0x"; int n = 2;
    for (int shift = 60; shift >= 0; shift -= 4) {
        int d = (v >> shift) & 15;
        if (d || n > 2 || shift == 0) b[n++] = "0123456789abcdef"[d];
    }
    b[n] = 0; put(b);
}
__attribute__((unused)) static void putDec(u64 v) {
    char b[21]; int n = 20; b[n] = 0;
    do { b[--n] = '0' + v % 10; v /= 10; } while (v);
    put(b + n);
}
/// A decimal number, or a hexadecimal one after "0x"; 0 if `s` is not one.
__attribute__((unused)) static int parse(const char *s, u64 *out) {
    u64 v = 0, base = 10;
    if (s[0] == '0' && s[1] == 'x') { base = 16; s += 2; }
    if (!*s) return 0;
    for (; *s; s++) {
        u64 d;
        if (*s >= '0' && *s <= '9') d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
        else return 0;
        v = v * base + d;
    }
    *out = v; return 1;
}
__attribute__((unused)) static int same(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }

static int run(long argc, char **argv);

// The kernel starts us with sp at argc, then the argv pointers.
__attribute__((naked)) void _start(void) {
    __asm__("mov x0, sp\n"
            "bl startC\n");
}
__attribute__((used, noreturn)) void startC(long *sp) {
    sys(SYS_exit, run(sp[0], (char **)(sp + 1)), 0, 0);
    __builtin_unreachable();
}
