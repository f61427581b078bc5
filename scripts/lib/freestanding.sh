# Sourced by the fetch scripts: builds one of Tern's small Linux tools (scripts/dom0, scripts/guest) for
# arm64 with the toolchain's clang, freestanding (scripts/lib/tern-freestanding.h: raw syscalls, no libc).
FREESTANDING_HEADER=$ROOT/scripts/lib/tern-freestanding.h
# build_freestanding OUTPUT SOURCE
build_freestanding() {
    local cc
    cc=$(command -v clang || echo /opt/swift/usr/bin/clang)
    "$cc" --target=aarch64-linux-gnu -Os -ffreestanding -nostdlib -static -fuse-ld=lld -fno-stack-protector \
        -I "$ROOT/scripts/lib" -o "$1" "$2"
}
