// tern-foreign: holds one page of another domain mapped in dom0 through Linux's privcmd
// (IOCTL_PRIVCMD_MMAPBATCH_V2, which becomes memory_op add_to_physmap_range with
// XENMAPSPACE_gmfn_foreign), for tests of what a foreign mapping keeps alive.
//
//   tern-foreign hold DOMID GFN   maps the page, shows the bytes at 0x38 (an arm64 Linux Image's
//                                 magic, "ARMd", when GFN is a kernel's first page), fills the page
//                                 with a pattern and returns; a child keeps the mapping and checks
//                                 the pattern every 100 ms.
//   tern-foreign stop             has the child report whether the pattern held, unmap and exit.
//
// Freestanding (raw Linux syscalls, no libc) so that it needs nothing in dom0's initramfs.
typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;

enum { SYS_faccessat = 48, SYS_openat = 56, SYS_close = 57, SYS_pipe2 = 59, SYS_read = 63, SYS_write = 64,
       SYS_exit = 93, SYS_nanosleep = 101, SYS_unlinkat = 35, SYS_setsid = 157, SYS_munmap = 215,
       SYS_clone = 220, SYS_mmap = 222, SYS_ioctl = 29 };
enum { AT_FDCWD = -100, O_RDWR = 2, O_WRONLY = 1, O_CREAT = 0100, O_CLOEXEC = 02000000, SIGCHLD = 17 };

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

static const char stopFile[] = "/run/tern-foreign.stop";

static u64 length(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static void put(const char *s) { sys(SYS_write, 1, s, length(s)); }
static void putHex(u64 v) {
    char b[19] = "0x"; int n = 2;
    for (int shift = 60; shift >= 0; shift -= 4) {
        int d = (v >> shift) & 15;
        if (d || n > 2 || shift == 0) b[n++] = "0123456789abcdef"[d];
    }
    b[n] = 0; put(b);
}
static void putDec(u64 v) { char b[21]; int n = 20; b[n] = 0; do { b[--n] = '0' + v % 10; v /= 10; } while (v); put(b + n); }
static int parse(const char *s, u64 *out) {
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
static int same(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }
static void pause100ms(void) { long ts[2] = {0, 100000000}; sys(SYS_nanosleep, ts, 0, 0); }
static unsigned char patternByte(u64 gfn, u64 i) { return (unsigned char)(i * 7 + gfn + 0x5a); }

// Linux's include/uapi/xen/privcmd.h.
struct privcmd_mmapbatch_v2 { u32 num; u16 dom; u16 pad; u64 addr; const u64 *arr; int *err; };
#define IOCTL_PRIVCMD_MMAPBATCH_V2 ((0u << 30) | (32u << 16) | ('P' << 8) | 4u)

// The child: maps, reports through the pipe, then holds the page until told to stop.
static int holder(u64 domid, u64 gfn, int ready) {
    long fd = sys(SYS_openat, AT_FDCWD, "/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    if (fd < 0) { put("tern-foreign: cannot open /dev/xen/privcmd\n"); return 1; }
    long va = sys6(SYS_mmap, 0, 4096, 3 /* read, write */, 1 /* shared */, fd, 0);
    if (va < 0 && va > -4096) { put("tern-foreign: mmap of privcmd failed\n"); return 1; }
    u64 frame = gfn; int err = 0;
    struct privcmd_mmapbatch_v2 batch = { 1, (u16)domid, 0, (u64)va, &frame, &err };
    long rc = sys(SYS_ioctl, fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &batch);
    if (rc < 0 || err) {
        put("tern-foreign: mapping d"); putDec(domid); put(" gfn "); putHex(gfn); put(" failed: ");
        putDec(rc < 0 ? -rc : -err); put("\n"); return 1;
    }
    volatile unsigned char *page = (volatile unsigned char *)va;
    char magic[5];
    for (int i = 0; i < 4; i++) { unsigned char c = page[0x38 + i]; magic[i] = c >= 0x20 && c < 0x7f ? c : '.'; }
    magic[4] = 0;
    for (u64 i = 0; i < 4096; i++) page[i] = patternByte(gfn, i);
    put("tern-foreign: d"); putDec(domid); put(" gfn "); putHex(gfn); put(" mapped, bytes at 0x38: ");
    put(magic); put("; pattern written\n");
    sys(SYS_write, ready, "1", 1);
    sys(SYS_close, ready, 0, 0);
    u64 checks = 0, changedAt = 0;
    for (;;) {
        pause100ms();
        checks++;
        for (u64 i = 0; i < 4096 && !changedAt; i++) if (page[i] != patternByte(gfn, i)) changedAt = checks;
        if (sys(SYS_faccessat, AT_FDCWD, stopFile, 0) == 0) break;
    }
    put("tern-foreign: d"); putDec(domid); put(" gfn "); putHex(gfn); put(" held for "); putDec(checks);
    if (changedAt) { put(" checks: CHANGED at check "); putDec(changedAt); put("\n"); }
    else put(" checks: pattern intact\n");
    sys(SYS_munmap, va, 4096, 0);
    sys(SYS_close, fd, 0, 0);
    sys(SYS_unlinkat, AT_FDCWD, stopFile, 0);
    return 0;
}

static int hold(u64 domid, u64 gfn) {
    int fds[2];
    if (sys(SYS_pipe2, fds, 0, 0) < 0) { put("tern-foreign: pipe failed\n"); return 1; }
    sys(SYS_unlinkat, AT_FDCWD, stopFile, 0);
    long pid = sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
    if (pid < 0) { put("tern-foreign: clone failed\n"); return 1; }
    if (pid == 0) {
        sys(SYS_close, fds[0], 0, 0);
        sys(SYS_setsid, 0, 0, 0);
        sys(SYS_exit, holder(domid, gfn, fds[1]), 0, 0);
    }
    sys(SYS_close, fds[1], 0, 0);
    char c = 0;
    return sys(SYS_read, fds[0], &c, 1) == 1 && c == '1' ? 0 : 1;
}

static int stop(void) {
    long fd = sys6(SYS_openat, AT_FDCWD, (long)stopFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0644, 0, 0);
    if (fd < 0) { put("tern-foreign: cannot create the stop file\n"); return 1; }
    sys(SYS_close, fd, 0, 0);
    for (int i = 0; i < 100; i++) {
        pause100ms();
        if (sys(SYS_faccessat, AT_FDCWD, stopFile, 0) != 0) return 0;
    }
    put("tern-foreign: no holder answered\n");
    return 1;
}

static int run(long argc, char **argv) {
    u64 domid, gfn;
    if (argc == 4 && same(argv[1], "hold") && parse(argv[2], &domid) && parse(argv[3], &gfn) && domid < 0x7ff0)
        return hold(domid, gfn);
    if (argc == 2 && same(argv[1], "stop")) return stop();
    put("usage: tern-foreign hold DOMID GFN | tern-foreign stop\n");
    return 2;
}

// The kernel starts us with sp at argc, then the argv pointers.
__attribute__((naked)) void _start(void) {
    __asm__("mov x0, sp\n"
            "bl startC\n");
}
__attribute__((used, noreturn)) void startC(long *sp) {
    sys(SYS_exit, run(sp[0], (char **)(sp + 1)), 0, 0);
    __builtin_unreachable();
}
