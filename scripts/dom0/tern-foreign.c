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
// Freestanding (scripts/lib/tern-freestanding.h) so that it needs nothing in dom0's initramfs.
#include "tern-freestanding.h"

enum { AT_FDCWD = -100, O_RDWR = 2, O_WRONLY = 1, O_CREAT = 0100, O_CLOEXEC = 02000000, SIGCHLD = 17 };

static const char stopFile[] = "/run/tern-foreign.stop";

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
