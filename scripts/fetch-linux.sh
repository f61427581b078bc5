#!/usr/bin/env bash
# Fetches Debian's arm64 Linux kernel and busybox-static (and, with --xen, Xen 4.17 for the
# benchmarks), unpacks them without installing, and builds Tern's busybox initramfs.
# Everything lands in .cache/linux (git-ignored). Idempotent: a second run only checks.
# Outputs: .cache/linux/Image (uncompressed arm64 Image), .cache/linux/initrd.cpio.gz,
#          .cache/linux/xen (with --xen).
# The initramfs's /init reads `tern.test=` from the kernel command line:
#   poweroff (default)  print the marker, cpuinfo, interrupts, CPU time (with steal), the date, the
#                       Xen and RTC lines from dmesg and /sys/hypervisor; poweroff -f
#   reboot              the same, then reboot -f
#   panic               the same, then crash the kernel through sysrq
#   crash               the same, then read an address with nothing behind it (the reader gets a bus
#                       error), and init exits (the kernel panics)
#   shell               the same, then a shell on the console
#   hold / spin         the same, then sleep for good / keep a CPU busy, printing "TERN-SPIN: N" with
#                       the rounds it made in each 2 s of its uptime (its share of a CPU)
#   disk-write / disk-read
#                       the same, then load xen-blkfront, wait for /dev/xvda and write two 4 MiB
#                       halves of a known pattern to it at once (flushed) / read them back at once,
#                       printing "TERN-DISK: wrote|read <md5> <md5>"; disk-read then waits for an
#                       xvdb to be attached, reads it ("TERN-DISK: xvdb read <md5> <md5>") and waits
#                       for it to go ("TERN-DISK: xvdb gone"); then poweroff -f
#   disk-reread         disk-read, but after the read waits for /dev/xvda to go ("TERN-DISK: xvda gone")
#                       and come back, reads it again ("TERN-DISK: xvda back <md5> <md5>") and stays up
#   disk-bench          the same, then with direct I/O (scripts/guest/tern-disk.c; busybox's dd has no
#                       O_DIRECT) write 64 MiB of zeros to /dev/xvda in 1 MiB requests, read them back
#                       ("TERN-BENCH: disk write|read <bytes> bytes in <us> us") and read 4 KiB at random
#                       offsets for 5 s ("TERN-BENCH: disk iops <n> ..."); "TERN-BENCH: disk done" and
#                       poweroff -f
#   disk-busy           load xen-blkfront, wait for /dev/xvda, then write 64 MiB to it with direct I/O
#                       again and again, saying "TERN-DISK: busy <n>" before pass n, until it is
#                       destroyed; a write that fails ends the passes ("TERN-DISK: busy failed")
#   net-serve / net-fetch
#                       the same, then load xen-netfront and bring eth0 up as tern.ip (/24); net-serve
#                       serves a 4 MiB pattern over HTTP and says "TERN-NET: serving <md5>"; net-fetch
#                       pings tern.peer until it answers ("TERN-NET: ping <peer> ok"), fetches the
#                       pattern from it ("TERN-NET: fetched <md5>") and then 16 MiB of zeros, timed ("TERN-BENCH: net
#                       fetched <bytes> bytes in <cs> cs"); both then stay up
# Debian's Xen frontend modules (xen-blkfront, xen-netfront) are in /lib/modules.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TERN_LINUX_CACHE:-$ROOT/.cache/linux}
. "$ROOT/scripts/lib/freestanding.sh"
WANT_XEN=0
[ "${1:-}" = --xen ] && WANT_XEN=1
export DEBIAN_FRONTEND=noninteractive

have() { [ -s "$CACHE/Image" ] && [ -s "$CACHE/busybox" ] && { [ $WANT_XEN = 0 ] || [ -s "$CACHE/xen" ]; }; }

if ! have; then
    command -v cpio >/dev/null && command -v file >/dev/null || {
        apt-get update -qq; apt-get install -y -qq --no-install-recommends cpio file; }
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt-get update -qq
    fi
    # The concrete kernel package behind the metapackage (linux-image-6.1.0-NN-arm64).
    kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [ -z "$kpkg" ]; then apt-get update -qq
        kpkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
    kpkg=${kpkg%:arm64}
    pkgs="${TERN_KERNEL_PKG:-$kpkg:arm64} ${TERN_BUSYBOX_PKG:-busybox-static:arm64}"
    [ $WANT_XEN = 1 ] && pkgs="$pkgs ${TERN_XEN_PKG:-xen-hypervisor-4.17-arm64:arm64}"
    rm -rf "$CACHE/debs" "$CACHE/root"
    mkdir -p "$CACHE/debs" "$CACHE/root"
    chmod 777 "$CACHE/debs"    # apt-get download runs as _apt where it can
    (cd "$CACHE/debs" && for p in $pkgs; do apt-get download -qq "$p"; done)
    for d in "$CACHE"/debs/*.deb; do dpkg-deb -x "$d" "$CACHE/root"; done
    vmlinuz=$(ls "$CACHE"/root/boot/vmlinuz-* | head -1)
    # Debian has shipped vmlinuz both gzip-compressed and as a plain Image.
    if file "$vmlinuz" | grep -q gzip; then zcat "$vmlinuz" > "$CACHE/Image.tmp"; else cp "$vmlinuz" "$CACHE/Image.tmp"; fi
    mv "$CACHE/Image.tmp" "$CACHE/Image"
    cp "$CACHE/root/bin/busybox" "$CACHE/busybox"
    if [ $WANT_XEN = 1 ]; then
        xen=$(ls "$CACHE"/root/boot/xen-4.17* 2>/dev/null | head -1)
        [ -n "$xen" ] || xen=$(find "$CACHE/root" -name 'xen-4.17*' -type f | head -1)
        cp "$xen" "$CACHE/xen"
    fi
    (cd "$CACHE/debs" && for d in *.deb; do dpkg-deb -f "$d" Package Version | paste -sd' '; done) > "$CACHE/versions"
    rm -rf "$CACHE/root"
fi

# The initramfs: rebuilt when this script is newer than it, so editing /init takes effect, and when
# the kernel is (its frontend modules must match it).
DISKTOOL=$ROOT/scripts/guest/tern-disk.c
if [ ! -s "$CACHE/initrd.cpio.gz" ] || [ "$0" -nt "$CACHE/initrd.cpio.gz" ] || [ "$CACHE/Image" -nt "$CACHE/initrd.cpio.gz" ] \
    || [ "$DISKTOOL" -nt "$CACHE/initrd.cpio.gz" ] || [ "$FREESTANDING_HEADER" -nt "$CACHE/initrd.cpio.gz" ]; then
    st=$(mktemp -d)
    trap 'rm -rf "$st"' EXIT
    mkdir -p "$st"/{bin,dev,proc,sys,tmp,lib/modules}
    cp "$CACHE/busybox" "$st/bin/busybox"
    kdeb=$(ls "$CACHE"/debs/linux-image-*_arm64.deb | head -1)
    for m in xen-blkfront xen-netfront; do
        dpkg-deb --fsys-tarfile "$kdeb" | tar -x -O --wildcards "*/$m.ko" > "$st/lib/modules/$m.ko"
        [ -s "$st/lib/modules/$m.ko" ] || { echo "fetch-linux: $m.ko not in $kdeb" >&2; exit 1; }
    done
    # Tern's direct-I/O timer.
    build_freestanding "$st/bin/tern-disk" "$DISKTOOL"
    cat > "$st/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mode=poweroff
ip= peer=
for a in $(cat /proc/cmdline); do case $a in tern.test=*) mode=${a#tern.test=};; tern.ip=*) ip=${a#tern.ip=};;
    tern.peer=*) peer=${a#tern.peer=};; esac; done
echo
echo "TERN-LINUX-USERSPACE-UP"
echo "uptime: $(cat /proc/uptime)"
echo "cpus online: $(cat /sys/devices/system/cpu/online)"
echo "console: $(cat /sys/class/tty/console/active)"
grep -E '^(processor|BogoMIPS|CPU part)' /proc/cpuinfo
cat /proc/interrupts
echo "memory: $(grep MemTotal /proc/meminfo)"
# user nice system idle iowait irq softirq steal ... (USER_HZ ticks): steal is the hypervisor's word.
echo "stat: $(grep '^cpu ' /proc/stat)"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S')"
dmesg | grep -iE 'xen|grant|event.chan|hvc|rtc' | head -40
for f in type version/major version/minor version/extra properties/capabilities properties/changeset \
         properties/virtual_start properties/pagesize properties/buildid compilation/compiler compilation/compiled_by; do
    [ -e /sys/hypervisor/$f ] && echo "hypervisor $f: $(cat /sys/hypervisor/$f 2>&1)"
done
echo "TERN-LINUX-DONE $mode"
case $mode in
    reboot) reboot -f ;;
    panic) echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger ;;
    crash) echo "reading guest-physical 0x10000000, where nothing is mapped"; devmem 0x10000000 32
           echo "devmem ended with status $?; init gives up"; exit 1 ;;
    shell) exec /bin/sh ;;
    disk-write|disk-read|disk-reread)
        # Two 4 MiB halves, written or read at once (one dd each, on whichever vCPUs they land): the
        # numbers from 1 and from 2000000, one per line, so every block differs.
        insmod /lib/modules/xen-blkfront.ko
        n=0; while [ ! -b /dev/xvda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
        [ -b /dev/xvda ] || { echo "TERN-DISK: no /dev/xvda"; poweroff -f; }
        echo "TERN-DISK: /dev/xvda has $(cat /sys/block/xvda/size) sectors"
        half() { dd if=$1 bs=65536 count=64 skip=$2 2>/dev/null | md5sum | cut -d' ' -f1; }
        if [ $mode = disk-write ]; then
            seq 1 700000 | head -c 4194304 > /tmp/a; seq 2000000 2700000 | head -c 4194304 > /tmp/b
            dd if=/tmp/a of=/dev/xvda bs=65536 conv=fsync 2>/dev/null & a=$!
            dd if=/tmp/b of=/dev/xvda bs=65536 seek=64 conv=fsync 2>/dev/null & b=$!
            wait $a && wait $b || echo "TERN-DISK: dd failed"
            sync
            echo "TERN-DISK: wrote $(md5sum < /tmp/a | cut -d' ' -f1) $(md5sum < /tmp/b | cut -d' ' -f1)"
            poweroff -f
        fi
        half /dev/xvda 0 > /tmp/a & half /dev/xvda 64 > /tmp/b & wait
        echo "TERN-DISK: read $(cat /tmp/a) $(cat /tmp/b)"
        if [ $mode = disk-reread ]; then
            # Its backend dies and the toolstack takes the disk away, then gives it back from a new one.
            n=0; while [ -b /dev/xvda ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n + 1)); done
            [ -b /dev/xvda ] && { echo "TERN-DISK: xvda still there"; poweroff -f; }
            echo "TERN-DISK: xvda gone"
            n=0; while [ ! -b /dev/xvda ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n + 1)); done
            [ -b /dev/xvda ] && echo "TERN-DISK: xvda back $(half /dev/xvda 0) $(half /dev/xvda 64)" \
                || echo "TERN-DISK: xvda not back"
            while true; do sleep 3600; done
        fi
        # Then a disk the toolstack attaches while this domain runs (xl block-attach), read and let go.
        n=0; while [ ! -b /dev/xvdb ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
        if [ -b /dev/xvdb ]; then
            echo "TERN-DISK: xvdb read $(half /dev/xvdb 0) $(half /dev/xvdb 64)"
            n=0; while [ -b /dev/xvdb ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
            [ -b /dev/xvdb ] && echo "TERN-DISK: xvdb still there" || echo "TERN-DISK: xvdb gone"
        else
            echo "TERN-DISK: no xvdb"
        fi
        poweroff -f ;;
    disk-bench)
        insmod /lib/modules/xen-blkfront.ko
        n=0; while [ ! -b /dev/xvda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
        echo "TERN-BENCH: disk writing"
        tern-disk write /dev/xvda 64
        tern-disk read /dev/xvda 64
        tern-disk random /dev/xvda 5
        echo "TERN-BENCH: disk done"
        poweroff -f ;;
    disk-busy)
        insmod /lib/modules/xen-blkfront.ko
        n=0; while [ ! -b /dev/xvda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
        # A write that fails stops it (it holds): a test waiting for pass 1 then sees none.
        n=0; while true; do echo "TERN-DISK: busy $n"; tern-disk write /dev/xvda 64 > /dev/null || break; n=$((n + 1)); done
        echo "TERN-DISK: busy failed"; while true; do sleep 3600; done ;;
    net-serve|net-fetch)
        insmod /lib/modules/xen-netfront.ko
        n=0; while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
        ip link set lo up; ip addr add $ip/24 dev eth0 && ip link set eth0 up || echo "TERN-NET: no eth0"
        echo "TERN-NET: eth0 is $ip"
        if [ $mode = net-serve ]; then
            mkdir -p /www; seq 1 700000 | head -c 4194304 > /www/pattern
            dd if=/dev/zero of=/www/zeros bs=1048576 count=16 2>/dev/null
            httpd -p 80 -h /www
            echo "TERN-NET: serving $(md5sum < /www/pattern | cut -d' ' -f1)"
        else
            n=0; until ping -c 1 -W 1 $peer >/dev/null 2>&1; do n=$((n + 1)); [ $n -lt 60 ] || break; done
            [ $n -lt 60 ] && echo "TERN-NET: ping $peer ok" || echo "TERN-NET: ping $peer failed"
            echo "TERN-NET: fetched $(wget -q -O - http://$peer/pattern | md5sum | cut -d' ' -f1)"
            read a r < /proc/uptime; n=$(wget -q -O - http://$peer/zeros | wc -c); read b r < /proc/uptime
            echo "TERN-BENCH: net fetched $n bytes in $((${b%.*}${b#*.} - ${a%.*}${a#*.})) cs"
        fi
        while true; do sleep 3600; done ;;
    hold) while true; do sleep 3600; done ;;
    spin) # Busy for good, saying every 2 s (of its uptime) how many rounds it made: its CPU share.
          read u r < /proc/uptime; end=$((${u%.*} + 2))
          while true; do
              n=0
              while read u r < /proc/uptime && [ "${u%.*}" -lt "$end" ]; do n=$((n + 1)); done
              echo "TERN-SPIN: $n"; end=$((end + 2))
          done ;;
    *) poweroff -f ;;
esac
INIT
    chmod 755 "$st/init"
    # What Linux runs when its hypervisor's toolstack asks it to power off or reboot (Xen's
    # control/shutdown: `xl shutdown`, `xl reboot`); init here is a shell, so no signal to it would do.
    mkdir -p "$st/sbin"
    printf '#!/bin/busybox sh\necho "TERN-LINUX: asked to power off" > /dev/console\nexec /bin/busybox poweroff -f\n' > "$st/sbin/poweroff"
    printf '#!/bin/busybox sh\necho "TERN-LINUX: asked to reboot" > /dev/console\nexec /bin/busybox reboot -f\n' > "$st/sbin/reboot"
    chmod 755 "$st/sbin/poweroff" "$st/sbin/reboot"
    # The kernel opens /dev/console before /init runs, so the node must be in the archive.
    # (This script runs as root anyway: apt-get needs it.)
    mknod -m 600 "$st/dev/console" c 5 1
    find "$st" -exec touch -h -d @0 {} +
    (cd "$st" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible -R 0:0) > "$st.cpio"
    gzip -9 -n < "$st.cpio" > "$CACHE/initrd.cpio.gz"
    rm -f "$st.cpio"
fi
echo "fetch-linux: $(cat "$CACHE/versions" 2>/dev/null | paste -sd';')"
ls -l "$CACHE"/Image "$CACHE"/initrd.cpio.gz
