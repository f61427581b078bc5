// tern-iops DEVICE SECONDS: 4 KiB reads at random 4 KiB-aligned offsets of DEVICE with O_DIRECT (no
// page cache: each read goes to the backend), one at a time, for SECONDS; prints
// "TERN-BENCH: disk iops <reads per second> reads <n> in <microseconds> us". busybox has no fio and
// its dd no O_DIRECT.
//
// Freestanding (scripts/lib/tern-freestanding.h) so that the guest initramfs needs nothing else.
#include "tern-freestanding.h"

enum { AT_FDCWD = -100, O_RDONLY = 0, O_DIRECT = 0200000, SEEK_END = 2, CLOCK_MONOTONIC = 1 };

static u64 nanoseconds(void) {
    s64 t[2];
    sys(SYS_clock_gettime, CLOCK_MONOTONIC, t, 0);
    return (u64)t[0] * 1000000000UL + (u64)t[1];
}

static int run(long argc, char **argv) {
    u64 seconds;
    if (argc != 3 || !parse(argv[2], &seconds) || seconds == 0) {
        put("usage: tern-iops DEVICE SECONDS\n");
        return 2;
    }
    long fd = sys6(SYS_openat, AT_FDCWD, (long)argv[1], O_RDONLY | O_DIRECT, 0, 0, 0);
    if (fd < 0) { put("tern-iops: cannot open the device with O_DIRECT\n"); return 1; }
    s64 size = sys(SYS_lseek, fd, 0, SEEK_END);
    if (size < 4096) { put("tern-iops: the device is too small\n"); return 1; }
    // An aligned buffer for O_DIRECT: a page of its own (PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS).
    char *buffer = (char *)sys6(SYS_mmap, 0, 4096, 3, 0x22, -1, 0);
    if ((s64)buffer < 0) { put("tern-iops: no buffer\n"); return 1; }
    u64 blocks = (u64)size / 4096, state = 0x9E3779B97F4A7C15UL, reads = 0;
    u64 start = nanoseconds(), end = start + seconds * 1000000000UL, now = start;
    while (now < end) {
        // xorshift64: the same offsets on every run, spread over the whole device.
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        if (sys6(SYS_pread64, fd, (long)buffer, 4096, (long)((state % blocks) * 4096), 0, 0) != 4096) {
            put("tern-iops: a read failed\n");
            return 1;
        }
        reads++;
        if ((reads & 15) == 0) now = nanoseconds();
    }
    now = nanoseconds();
    u64 us = (now - start) / 1000;
    put("TERN-BENCH: disk iops "); putDec(reads * 1000000UL / (us ? us : 1));
    put(" reads "); putDec(reads); put(" in "); putDec(us); put(" us\n");
    return 0;
}
