#!/usr/bin/env bash
# Fetches Xen 4.17's own toolstack as Debian ships it for arm64 (xen-utils-4.17: xl, libxl, libxenctrl,
# the C xenstored, xenconsoled, xen-init-dom0, init-dom0less; xenstore-utils) and the libraries it
# needs, with apt-get download and no install, and builds a control-domain initramfs around it and
# the Xen modules of Debian's kernel, plus Tern's tern-foreign (scripts/dom0/tern-foreign.c), which
# holds another domain's page mapped through privcmd for tests, and Xen's hotplug scripts with the bash
# and flock they need (libxl runs them for disks and network interfaces). Needs scripts/fetch-linux.sh's
# kernel package first.
# Output: .cache/linux/initrd-xl.cpio.gz (git-ignored). Idempotent; rebuilt when this script changes.
# Its /init loads xen-privcmd, xen-evtchn, xen-gntdev, xen-gntalloc, xenfs, loop, xen-blkback, the
# bridge and xen-netback, makes the bridge xenbr0 (10.0.0.1/24) for domUs' vifs, mounts /proc/xen, starts xenstored, runs xen-init-dom0, starts xenconsoled, runs init-dom0less
# (boot-time domUs join xenstore), then runs what `tern.run=` on the kernel command line names:
# commands separated by '+', with '_' for a space (tern.run=xl_info+xl_list), each echoed and
# followed by its exit status; then powers off (tern.after=shell: a shell on hvc0).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TERN_LINUX_CACHE:-$ROOT/.cache/linux}
OUT=$CACHE/initrd-xl.cpio.gz
TS=$CACHE/toolstack
. "$ROOT/scripts/lib/freestanding.sh"
export DEBIAN_FRONTEND=noninteractive

kdeb=$(ls "$CACHE"/debs/linux-image-*_arm64.deb 2>/dev/null | head -1)
[ -n "$kdeb" ] && [ -s "$CACHE/busybox" ] || { echo "fetch-toolstack: run scripts/fetch-linux.sh first" >&2; exit 1; }
TOOL=$ROOT/scripts/dom0/tern-foreign.c
if [ -s "$OUT" ] && [ "$OUT" -nt "$0" ] && [ "$OUT" -nt "$kdeb" ] && [ "$OUT" -nt "$CACHE/initrd.cpio.gz" ] \
   && [ "$OUT" -nt "$TOOL" ] && [ "$OUT" -nt "$FREESTANDING_HEADER" ]; then
    echo "fetch-toolstack: $(cat "$TS/versions" 2>/dev/null | paste -sd';')"
    ls -l "$OUT"; exit 0
fi
command -v readelf >/dev/null && command -v cpio >/dev/null || {
    apt-get update -qq; apt-get install -y -qq --no-install-recommends binutils cpio; }
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    apt-get update -qq
fi

# The packages: the tools, then every library package they depend on, transitively. Only libraries
# are followed (python3, which pygrub wants, and the like are not needed by xl and the daemons); the
# ELF check below says if a library is missing.
rm -rf "$TS"
mkdir -p "$TS/debs" "$TS/root"
chmod 777 "$TS/debs"    # apt-get download runs as _apt where it can
want="xen-utils-4.17:arm64 xenstore-utils:arm64"
seen=""
queue=$want
while [ -n "$queue" ]; do
    set -- $queue; p=$1; shift; queue="$*"
    case " $seen " in *" $p "*) continue ;; esac
    seen="$seen $p"
    for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
               --no-enhances "$p" 2>/dev/null | awk '/^ *(Pre)?Depends: [^<]/{print $2}'); do
        d=${d%:any}; case $d in *:*) ;; *) d=$d:arm64 ;; esac
        case $d in lib*:arm64|zlib1g:arm64) case $d in libpython*|libperl*) ;; *) queue="$queue $d" ;; esac ;; esac
    done
done
# For the disk and network backends: Xen's hotplug scripts (xen-utils-common: block, vif-bridge, ...)
# and what they run that busybox lacks: bash, and util-linux's flock. Their only libraries are libc
# and libtinfo, which the tools' list already has (the ELF check below says if not).
extras="xen-utils-common:arm64 bash:arm64 util-linux:arm64"
(cd "$TS/debs" && for p in $seen $extras; do apt-get download -qq "$p"; done)
for d in "$TS"/debs/*.deb; do dpkg-deb -x "$d" "$TS/root"; done
(cd "$TS/debs" && for d in *.deb; do dpkg-deb -f "$d" Package Version | paste -sd' '; done) > "$TS/versions"

st=$(mktemp -d)
trap 'rm -rf "$st" "$st.cpio"' EXIT
mkdir -p "$st"/{bin,dev,proc,sys,tmp,root,lib/modules,etc/xen,var/lib/xen,var/lib/xenstored,var/log/xen,var/run/xen,run/xen}
cp "$CACHE/busybox" "$st/bin/busybox"
bin=/usr/lib/xen-4.17/bin
tools="$bin/xl $bin/xenstored $bin/xenconsoled $bin/xen-init-dom0 $bin/init-dom0less $bin/xenconsole
       $bin/xenstore-control /usr/bin/xenstore-ls /usr/bin/xenstore-read /usr/bin/xenstore-write
       /usr/bin/xenstore-list /usr/bin/xenstore-rm /usr/bin/xenstore-exists"
# Each tool and, transitively, every shared library it needs, at the path Debian puts it (the
# loader's default search covers the multiarch directories).
libdirs="lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu"
copy() { mkdir -p "$st/$(dirname "$1")"; cp -a "$TS/root/$1" "$st/$1"
         [ -L "$TS/root/$1" ] && copy "$(dirname "$1")/$(readlink "$TS/root/$1")" || true; }
needed=""
pending=""
tools="$tools /bin/bash /usr/bin/flock"
for t in $tools; do t=${t#/}; [ -e "$TS/root/$t" ] || { echo "fetch-toolstack: $t missing" >&2; exit 1; }
    copy "$t"; pending="$pending $t"; done
copy lib/ld-linux-aarch64.so.1
# glibc loads it by name when a thread is cancelled (xl's child processes do that).
copy lib/aarch64-linux-gnu/libgcc_s.so.1
while [ -n "$pending" ]; do
    set -- $pending; f=$1; shift; pending="$*"
    for lib in $(readelf -d "$st/$f" 2>/dev/null | awk '/NEEDED/{gsub(/[\[\]]/,"",$5); print $5}'); do
        case " $needed " in *" $lib "*) continue ;; esac
        needed="$needed $lib"
        found=""
        for dir in $libdirs; do [ -e "$TS/root/$dir/$lib" ] && found=$dir/$lib && break; done
        [ -n "$found" ] || { echo "fetch-toolstack: $lib (needed by $f) is in no fetched package" >&2; exit 1; }
        copy "$found"; pending="$pending $found"
    done
done
ln -s $bin/xl "$st/bin/xl"
mkdir -p "$st/etc/xen/scripts"
cp -a "$TS/root/etc/xen/scripts/." "$st/etc/xen/scripts/"
# Tern's own test tool for foreign mappings.
build_freestanding "$st/bin/tern-foreign" "$TOOL"
# xl reads it at every start; Debian's is all comments, so the defaults hold either way.
echo "# xl.conf: Xen's defaults (see xl.conf(5))" > "$st/etc/xen/xl.conf"
for m in xen-privcmd xen-evtchn xen-gntdev xen-gntalloc xenfs loop xen-blkback llc stp bridge xen-netback xen-blkfront; do
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -O --wildcards "*/$m.ko" > "$st/lib/modules/$m.ko"
    [ -s "$st/lib/modules/$m.ko" ] || { echo "fetch-toolstack: $m.ko not in $kdeb" >&2; exit 1; }
done
# Guests for `xl create`: Debian's kernel (gzipped: libxl's builder unpacks it) with Tern's busybox
# initramfs, whose init prints TERN-LINUX-USERSPACE-UP and then does what tern.test= says.
mkdir -p "$st/var/lib/tern"
gzip -1 -n < "$CACHE/Image" > "$st/var/lib/tern/Image.gz"
cp "$CACHE/initrd.cpio.gz" "$st/var/lib/tern/initrd.cpio.gz"
# domu1 (1 vCPU) stays up; domu2 (2 vCPUs) powers itself off once it has printed what it sees.
for n in 1 2; do
    after=hold; [ $n = 2 ] && after=poweroff
    cat > "$st/etc/xen/domu$n.cfg" <<CFG
name = "domu$n"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 128
vcpus = $n
extra = "console=hvc0 rdinit=/init tern.test=$after"
CFG
done
# spin1 and spin2: one vCPU each, both on CPU 1, busy for good (tern.test=spin): what a weight shares.
for n in 1 2; do
    cat > "$st/etc/xen/spin$n.cfg" <<CFG
name = "spin$n"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 128
vcpus = 1
cpus = "1"
extra = "console=hvc0 rdinit=/init tern.test=spin"
CFG
done
# disk-write and disk-read: two vCPUs and 256 MiB each (with 128, Debian's kernel keeps 64 for CMA and
# the second disk's frontend runs out), the same disk (a file in dom0, made by the test); the first
# writes a pattern to it and powers off, the second reads it back.
for m in write read; do
    cat > "$st/etc/xen/disk-$m.cfg" <<CFG
name = "disk-$m"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 256
vcpus = 2
disk = [ "/var/lib/tern/disk.img,raw,xvda,rw" ]
extra = "console=hvc0 rdinit=/init tern.test=disk-$m"
CFG
done
# net-serve and net-fetch: one vCPU and 128 MiB each on xenbr0 (10.0.0.2 and 10.0.0.3): the first serves
# a 4 MiB pattern and 16 MiB of zeros over HTTP, the second pings it and fetches both (cma=0: Debian's
# 64 MiB CMA area would leave too little of the 128 MiB for the 16 MiB in its RAM-backed root).
for m in serve:2:3 fetch:3:2; do
    role=${m%%:*} me=${m#*:}; me=${me%:*} peer=${m##*:}
    cat > "$st/etc/xen/net-$role.cfg" <<CFG
name = "net-$role"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 128
vcpus = 1
vif = [ "bridge=xenbr0,mac=00:16:3e:00:00:0$me" ]
extra = "console=hvc0 rdinit=/init cma=0 tern.test=net-$role tern.ip=10.0.0.$me tern.peer=10.0.0.$peer"
CFG
done
# disk-bench: the disk benchmark's domU (1 vCPU, 256 MiB), on an 80 MiB file the benchmark makes;
# disk-busy: the same domU writing to it until destroyed (tests kill it in the middle of its I/O).
cat > "$st/etc/xen/disk-bench.cfg" <<CFG
name = "disk-bench"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 256
vcpus = 1
disk = [ "/var/lib/tern/bench.img,raw,xvda,rw" ]
extra = "console=hvc0 rdinit=/init tern.test=disk-bench"
CFG
sed 's/disk-bench/disk-busy/g' "$st/etc/xen/disk-bench.cfg" > "$st/etc/xen/disk-busy.cfg"
# tern-fetch URL: fetches URL and says how long that took ("TERN-BENCH: fetched N bytes in C cs").
cat > "$st/bin/tern-fetch" <<'FETCH'
#!/bin/busybox sh
read a r < /proc/uptime; n=$(wget -q -O - "$1" | wc -c); read b r < /proc/uptime
echo "TERN-BENCH: fetched $n bytes in $((${b%.*}${b#*.} - ${a%.*}${a#*.})) cs"
FETCH
chmod 755 "$st/bin/tern-fetch"
# balloon: a 192 MiB domU that stays up, for `xl mem-set`. acpi = 0 is said outright because Debian's
# xl 4.17 asserts in mem-set on Arm when the domain's saved configuration leaves acpi at its default
# (libxl__arch_extra_memory reads it unset; the same on Xen 4.17). cma=0: Debian's kernel would keep
# 64 MiB for its contiguous allocator, which a balloon cannot take.
cat > "$st/etc/xen/balloon.cfg" <<CFG
name = "balloon"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 192
vcpus = 2
acpi = 0
extra = "console=hvc0 rdinit=/init cma=0 tern.test=hold"
CFG
# driver: a driver domain (driver_domain = 1 lets it use libxl's own xenstore directories) that runs
# this same initramfs without dom0's part (tern.role=driver, driver.cpio.gz: all but /var/lib/tern):
# xen-blkback and `xl devd`, which runs the hotplug scripts for the backends xl in dom0 gives it. Its
# own disk is dom0's file (through dom0's blkback), which it serves on as /dev/xvda, so what it
# holds outlives it; it also has a bridge of its own, xenbr0 (10.0.1.1), for vifs it serves.
# disk-remote-write, disk-remote-read and disk-remote-busy are disk-write, disk-reread and disk-busy
# with their disk in the driver domain (the last with 128 MiB); net-remote-serve and net-remote-fetch
# are net-serve and net-fetch on the driver domain's bridge (10.0.1.2 and 10.0.1.3).
cat > "$st/etc/xen/driver.cfg" <<CFG
name = "driver"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/driver.cpio.gz"
memory = 128
vcpus = 1
driver_domain = 1
disk = [ "/var/lib/tern/disk.img,raw,xvda,rw" ]
extra = "console=hvc0 rdinit=/init cma=0 tern.role=driver"
CFG
for m in write read; do
    cat > "$st/etc/xen/disk-remote-$m.cfg" <<CFG
name = "disk-remote-$m"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 192
vcpus = 2
disk = [ "backend=driver,format=raw,vdev=xvda,access=rw,target=/dev/xvda" ]
extra = "console=hvc0 rdinit=/init cma=0 tern.test=disk-${m/read/reread}"
CFG
done
sed -e 's/disk-remote-read/disk-remote-busy/; s/tern.test=disk-reread/tern.test=disk-busy/; s/^memory = 192/memory = 128/' \
    -e 's/^vcpus = 2/vcpus = 1/' "$st/etc/xen/disk-remote-read.cfg" > "$st/etc/xen/disk-remote-busy.cfg"
for m in serve:2:3 fetch:3:2; do
    role=${m%%:*} me=${m#*:}; me=${me%:*} peer=${m##*:}
    cat > "$st/etc/xen/net-remote-$role.cfg" <<CFG
name = "net-remote-$role"
kernel = "/var/lib/tern/Image.gz"
ramdisk = "/var/lib/tern/initrd.cpio.gz"
memory = 128
vcpus = 1
vif = [ "backend=driver,bridge=xenbr0,mac=00:16:3e:00:02:0$me" ]
extra = "console=hvc0 rdinit=/init cma=0 tern.test=net-$role tern.ip=10.0.1.$me tern.peer=10.0.1.$peer"
CFG
done
# tern-gone NAME [SECONDS]: waits until domain NAME has gone from xl list.
cat > "$st/bin/tern-gone" <<'GONE'
#!/bin/busybox sh
n=$((${2:-60} * 5))
while [ "$n" -gt 0 ]; do xl domid "$1" >/dev/null 2>&1 || exit 0; sleep 0.2; n=$((n - 1)); done
echo "tern-gone: $1 is still there"; xl list; exit 1
GONE
chmod 755 "$st/bin/tern-gone"
# tern-wait NAME TEXT [SECONDS]: waits until domain NAME's console (as xenconsoled logs it) shows TEXT.
cat > "$st/bin/tern-wait" <<'WAIT'
#!/bin/busybox sh
f=/var/log/xen/console/guest-$1.log n=$((${3:-90} * 5))
while [ "$n" -gt 0 ]; do grep -q "$2" "$f" 2>/dev/null && exit 0; sleep 0.2; n=$((n - 1)); done
echo "tern-wait: $1 did not print $2"; exit 1
WAIT
chmod 755 "$st/bin/tern-wait"
# tern-steady SECONDS FAILURE CONDITION: waits until the shell test CONDITION holds and the machine's
# free memory (MiB, as `xl info` says it) has stopped changing while it does, then prints that; after
# SECONDS says FAILURE and what xl list shows. The two below use it.
cat > "$st/bin/tern-steady" <<'STEADY'
#!/bin/busybox sh
n=$(($1 * 4)) last=
while [ "$n" -gt 0 ]; do
    if eval "$3"; then
        free=$(xl info | sed -n 's/^free_memory *: //p')
        [ -n "$free" ] && [ "$free" = "$last" ] && { echo "free_memory: $free"; exit 0; }
        last=$free
    fi
    sleep 0.25; n=$((n - 1))
done
echo "$2"; xl list; exit 1
STEADY
# tern-settle [SECONDS]: waits until Domain-0 is the only domain and the free memory has stopped
# changing, then prints it.
cat > "$st/bin/tern-settle" <<'SETTLE'
#!/bin/busybox sh
exec tern-steady "${1:-60}" "tern-settle: domains or free memory still changing" '[ "$(xl list | wc -l)" -le 2 ]'
SETTLE
# tern-mem NAME MIB [SECONDS]: waits until domain NAME has MIB MiB (xl list's Mem: its balloon has
# reached the target), then prints the free memory once it has stopped changing (pieces given back
# are freed a moment after).
cat > "$st/bin/tern-mem" <<'MEM'
#!/bin/busybox sh
export NAME="$1" MIB="$2"
exec tern-steady "${3:-60}" "tern-mem: $1 did not reach $2 MiB, or the free memory kept changing" \
    '[ "$(xl list "$NAME" | awk "NR == 2 { print \$3 }")" = "$MIB" ]'
MEM
chmod 755 "$st/bin/tern-steady" "$st/bin/tern-settle" "$st/bin/tern-mem"
cat > "$st/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/usr/lib/xen-4.17/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Xen's hotplug scripts read /dev/stdin, which devtmpfs does not make.
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs tmpfs /run
# xenconsoled gives each domain's console a pseudo-terminal (what `xl console` attaches to).
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mkdir -p /run/xen /run/xenstored /var/lock
run= after=poweroff role=dom0
for a in $(cat /proc/cmdline); do case $a in tern.run=*) run=${a#tern.run=};; tern.after=*) after=${a#tern.after=};;
    tern.role=*) role=${a#tern.role=};; esac; done
if [ "$role" = driver ]; then
    # A driver domain: the block and network backends and xl devd, which sets up what xl in dom0
    # asks of it; vifs it serves join its own bridge.
    for m in xen-privcmd xen-evtchn xen-gntdev xenfs loop xen-blkback xen-blkfront llc stp bridge xen-netback; do
        insmod /lib/modules/$m.ko || echo "TERN-DRIVER: insmod $m failed"
    done
    ip link set lo up
    brctl addbr xenbr0 && ip addr add 10.0.1.1/24 dev xenbr0 && ip link set xenbr0 up || echo "TERN-DRIVER: no bridge"
    mkdir -p /proc/xen /var/log/xen
    mount -t xenfs xenfs /proc/xen
    n=0; while [ ! -b /dev/xvda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
    xl devd; echo "TERN-DRIVER: xl devd exit $?"
    [ -b /dev/xvda ] && echo "TERN-DRIVER: serving /dev/xvda ($(cat /sys/block/xvda/size) sectors)" \
        || echo "TERN-DRIVER: no /dev/xvda from dom0"
    while true; do sleep 3600; done
fi
echo
echo "TERN-DOM0-USERSPACE-UP"
for m in xen-privcmd xen-evtchn xen-gntdev xen-gntalloc xenfs loop xen-blkback llc stp bridge xen-netback; do insmod /lib/modules/$m.ko || echo "TERN-DOM0: insmod $m failed"; done
# The bridge domUs' vifs join (vif = [ "bridge=xenbr0" ]), with dom0 on it as 10.0.0.1.
ip link set lo up
# (A new bridge has STP off, so a port forwards as soon as it joins; busybox's brctl has no `stp`.)
brctl addbr xenbr0 && ip addr add 10.0.0.1/24 dev xenbr0 && ip link set xenbr0 up || echo "TERN-DOM0: no bridge"
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen
echo "TERN-DOM0: capabilities: $(cat /proc/xen/capabilities)"
xenstored --pid-file /run/xenstored.pid; echo "TERN-DOM0: xenstored exit $?"
xen-init-dom0; echo "TERN-DOM0: xen-init-dom0 exit $?"
# Each guest's console is also kept in /var/log/xen/console/guest-NAME.log, for scripts to read.
mkdir -p /var/log/xen/console
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console; echo "TERN-DOM0: xenconsoled exit $?"
# The boot configuration's Xen-aware domUs (xen,enhanced) wait for xenstore: give each its page and
# introduce it, as Xen's dom0less documentation says to once dom0 is up.
init-dom0less; echo "TERN-DOM0: init-dom0less exit $?"
old=$IFS; IFS=+
for c in $run; do
    cmd=$(echo "$c" | tr _ ' ')
    echo "TERN-DOM0-RUN: $cmd"
    IFS=$old; sh -c "$cmd" 2>&1; status=$?; IFS=+
    echo "TERN-DOM0-STATUS: $status"
done
IFS=$old
echo "TERN-DOM0-DONE"
case $after in
    shell) exec /bin/sh ;;
    *) poweroff -f ;;
esac
INIT
chmod 755 "$st/init"
mknod -m 600 "$st/dev/console" c 5 1
find "$st" -exec touch -h -d @0 {} +
# The driver domain's initramfs: all of this but the guests' kernel and initramfs.
(cd "$st" && find . -path ./var/lib/tern -prune -o -print | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible -R 0:0) \
    | gzip -9 -n > "$st/var/lib/tern/driver.cpio.gz"
touch -h -d @0 "$st/var/lib/tern/driver.cpio.gz"
(cd "$st" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible -R 0:0) > "$st.cpio"
gzip -9 -n < "$st.cpio" > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -rf "$TS/root"
echo "fetch-toolstack: $(paste -sd';' "$TS/versions")"
ls -l "$OUT"
