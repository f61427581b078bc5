// tern-foreign: holds one page of another domain mapped in dom0 through Linux's privcmd
// (IOCTL_PRIVCMD_MMAPBATCH_V2, which becomes memory_op add_to_physmap_range with
// XENMAPSPACE_gmfn_foreign), for tests of what a foreign mapping keeps alive.
//
//   tern-foreign hold DOMID GFN   maps the page, shows the bytes at 0x38 (an arm64 Linux Image's
//                                 magic, "ARMd", when GFN is a kernel's first page), fills the page
//                                 with a pattern and returns; a child keeps the mapping and checks
//                                 the pattern every 100 ms.
//   tern-foreign keep DOMID GFN COUNT STRIDE
//                                 maps COUNT pages (GFN, GFN + STRIDE, ...) in one batch without
//                                 touching them and returns; a child keeps them mapped.
//   tern-foreign stop             has the child report (whether the pattern held, or how many pages
//                                 it kept), unmap and exit.
//
// Freestanding (scripts/lib/tern-freestanding.h) so that it needs nothing in dom0's initramfs.
#include "tern-freestanding.h"

enum { AT_FDCWD = -100, O_RDWR = 2, O_WRONLY = 1, O_CREAT = 0100, O_CLOEXEC = 02000000, SIGCHLD = 17 };

static const char stopFile[] = "/run/tern-foreign.stop";

static void pause100ms(void) { long ts[2] = {0, 100000000}; sys(SYS_nanosleep, ts, 0, 0); }
static unsigned char patternByte(u64 gfn, u64 i) { return (unsigned char)(i * 7 + gfn + 0x5a); }

// Linux's include/uapi/xen/privcmd.h.
struct privcmd_mmapbatch_v2 { u32 num; u16 dom; u16 pad; u64 addr; const u64 *arr; int *err; };
#define IOCTL_PRIVCMD_MMAPBATCH_V2 ((0u << 30) | (32u << 16) | ('P' << 8) | 4u)

enum { mostPages = 1024 };

// The child: maps, reports through the pipe, then holds the pages until told to stop. With `pattern`
// it fills the one page with a pattern first and checks it on every look.
static int holder(u64 domid, u64 gfn, u64 count, u64 stride, int pattern, int ready) {
    long fd = sys(SYS_openat, AT_FDCWD, "/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    if (fd < 0) { put("tern-foreign: cannot open /dev/xen/privcmd\n"); return 1; }
    long va = sys6(SYS_mmap, 0, count * 4096, 3 /* read, write */, 1 /* shared */, fd, 0);
    if (va < 0 && va > -4096) { put("tern-foreign: mmap of privcmd failed\n"); return 1; }
    static u64 frames[mostPages];
    static int errors[mostPages];
    for (u64 i = 0; i < count; i++) frames[i] = gfn + i * stride;
    struct privcmd_mmapbatch_v2 batch = { (u32)count, (u16)domid, 0, (u64)va, frames, errors };
    long rc = sys(SYS_ioctl, fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &batch);
    for (u64 i = 0; i < count && rc >= 0; i++) if (errors[i]) rc = errors[i];
    if (rc < 0) {
        put("tern-foreign: mapping d"); putDec(domid); put(" gfn "); putHex(gfn); put(" failed: ");
        putDec(-rc); put("\n"); return 1;
    }
    volatile unsigned char *page = (volatile unsigned char *)va;
    put("tern-foreign: d"); putDec(domid); put(" gfn "); putHex(gfn);
    if (pattern) {
        char magic[5];
        for (int i = 0; i < 4; i++) { unsigned char c = page[0x38 + i]; magic[i] = c >= 0x20 && c < 0x7f ? c : '.'; }
        magic[4] = 0;
        for (u64 i = 0; i < 4096; i++) page[i] = patternByte(gfn, i);
        put(" mapped, bytes at 0x38: "); put(magic); put("; pattern written\n");
    } else {
        put(" and "); putDec(count - 1); put(" more mapped\n");
    }
    sys(SYS_write, ready, "1", 1);
    sys(SYS_close, ready, 0, 0);
    u64 checks = 0, changedAt = 0;
    for (;;) {
        pause100ms();
        checks++;
        for (u64 i = 0; pattern && i < 4096 && !changedAt; i++) if (page[i] != patternByte(gfn, i)) changedAt = checks;
        if (sys(SYS_faccessat, AT_FDCWD, stopFile, 0) == 0) break;
    }
    put("tern-foreign: d"); putDec(domid); put(" gfn "); putHex(gfn); put(" held for "); putDec(checks);
    if (!pattern) { put(" checks: "); putDec(count); put(" pages kept\n"); }
    else if (changedAt) { put(" checks: CHANGED at check "); putDec(changedAt); put("\n"); }
    else put(" checks: pattern intact\n");
    sys(SYS_munmap, va, count * 4096, 0);
    sys(SYS_close, fd, 0, 0);
    sys(SYS_unlinkat, AT_FDCWD, stopFile, 0);
    return 0;
}

static int hold(u64 domid, u64 gfn, u64 count, u64 stride, int pattern) {
    int fds[2];
    if (sys(SYS_pipe2, fds, 0, 0) < 0) { put("tern-foreign: pipe failed\n"); return 1; }
    sys(SYS_unlinkat, AT_FDCWD, stopFile, 0);
    long pid = sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
    if (pid < 0) { put("tern-foreign: clone failed\n"); return 1; }
    if (pid == 0) {
        sys(SYS_close, fds[0], 0, 0);
        sys(SYS_setsid, 0, 0, 0);
        sys(SYS_exit, holder(domid, gfn, count, stride, pattern, fds[1]), 0, 0);
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
    u64 domid, gfn, count, stride;
    int mapping = argc >= 4 && parse(argv[2], &domid) && parse(argv[3], &gfn) && domid < 0x7ff0;
    if (mapping && argc == 4 && same(argv[1], "hold")) return hold(domid, gfn, 1, 0, 1);
    if (mapping && argc == 6 && same(argv[1], "keep") && parse(argv[4], &count) && parse(argv[5], &stride)
        && count > 0 && count <= mostPages)
        return hold(domid, gfn, count, stride, 0);
    if (argc == 2 && same(argv[1], "stop")) return stop();
    put("usage: tern-foreign hold DOMID GFN | tern-foreign keep DOMID GFN COUNT STRIDE | tern-foreign stop\n");
    return 2;
}
