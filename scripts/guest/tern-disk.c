// tern-disk write|read|random DEVICE AMOUNT: times direct I/O (O_DIRECT: no page cache, each request
// goes to the backend) on DEVICE, as `dd oflag=direct` / `iflag=direct` and fio would; busybox has
// neither.
//   write DEVICE MIB    MIB MiB of zeros from the start, 1 MiB per request:
//                       "TERN-BENCH: disk write <bytes> bytes in <microseconds> us"
//   read DEVICE MIB     the same amount read back: "TERN-BENCH: disk read <bytes> bytes in <us> us"
//   random DEVICE SECS  4 KiB reads at random 4 KiB-aligned offsets, one at a time, for SECS seconds:
//                       "TERN-BENCH: disk iops <reads per second> reads <n> in <us> us"
//
// Freestanding (scripts/lib/tern-freestanding.h) so that the guest initramfs needs nothing else.
#include "tern-freestanding.h"

enum { AT_FDCWD = -100, O_RDONLY = 0, O_WRONLY = 1, O_DIRECT = 0200000, SEEK_END = 2, CLOCK_MONOTONIC = 1,
       SYS_pwrite64 = 68, MiB = 1048576 };

static u64 nanoseconds(void) {
    s64 t[2];
    sys(SYS_clock_gettime, CLOCK_MONOTONIC, t, 0);
    return (u64)t[0] * 1000000000UL + (u64)t[1];
}

static void report(const char *what, u64 count, const char *unit, u64 start) {
    u64 us = (nanoseconds() - start) / 1000;
    put("TERN-BENCH: disk "); put(what); put(" ");
    if (same(what, "iops")) { putDec(count * 1000000UL / (us ? us : 1)); put(" reads "); }
    putDec(count); put(unit); putDec(us); put(" us\n");
}

/// MiB transfers of 1 MiB from the start of the device, each waited for before the next, as dd's.
static int sequential(long fd, int writing, u64 mib) {
    // An aligned buffer for O_DIRECT, zeroed by the kernel (PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS).
    char *buffer = (char *)sys6(SYS_mmap, 0, MiB, 3, 0x22, -1, 0);
    if ((s64)buffer < 0) { put("tern-disk: no buffer\n"); return 1; }
    u64 start = nanoseconds();
    for (u64 i = 0; i < mib; i++) {
        long n = sys6(writing ? SYS_pwrite64 : SYS_pread64, fd, (long)buffer, MiB, (long)(i * MiB), 0, 0);
        if (n != MiB) { put(writing ? "tern-disk: a write failed\n" : "tern-disk: a read failed\n"); return 1; }
    }
    report(writing ? "write" : "read", mib * MiB, " bytes in ", start);
    return 0;
}

static int randomReads(long fd, u64 seconds) {
    s64 size = sys(SYS_lseek, fd, 0, SEEK_END);
    if (size < 4096) { put("tern-disk: the device is too small\n"); return 1; }
    char *buffer = (char *)sys6(SYS_mmap, 0, 4096, 3, 0x22, -1, 0);
    if ((s64)buffer < 0) { put("tern-disk: no buffer\n"); return 1; }
    u64 blocks = (u64)size / 4096, state = 0x9E3779B97F4A7C15UL, reads = 0;
    u64 start = nanoseconds(), end = start + seconds * 1000000000UL, now = start;
    while (now < end) {
        // xorshift64: the same offsets on every run, spread over the whole device.
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        if (sys6(SYS_pread64, fd, (long)buffer, 4096, (long)((state % blocks) * 4096), 0, 0) != 4096) {
            put("tern-disk: a read failed\n");
            return 1;
        }
        reads++;
        if ((reads & 15) == 0) now = nanoseconds();
    }
    report("iops", reads, " in ", start);
    return 0;
}

static int run(long argc, char **argv) {
    u64 amount;
    int writing = argc == 4 && same(argv[1], "write"), reading = argc == 4 && same(argv[1], "read");
    int randomly = argc == 4 && same(argv[1], "random");
    if (!(writing || reading || randomly) || !parse(argv[3], &amount) || amount == 0) {
        put("usage: tern-disk write|read DEVICE MIB, or tern-disk random DEVICE SECONDS\n");
        return 2;
    }
    long fd = sys6(SYS_openat, AT_FDCWD, (long)argv[2], (writing ? O_WRONLY : O_RDONLY) | O_DIRECT, 0, 0, 0);
    if (fd < 0) { put("tern-disk: cannot open the device with O_DIRECT\n"); return 1; }
    return randomly ? randomReads(fd, amount) : sequential(fd, writing, amount);
}
