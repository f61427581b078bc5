#!/usr/bin/env bash
# Installs what Tern needs on a fresh Debian machine that already has Swift: QEMU (aarch64 system
# emulation) and dtc. Idempotent; run as root (CI and the project's machines are).
set -euo pipefail
need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v dtc >/dev/null || need+=(device-tree-compiler)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }
echo "setup: qemu $(qemu-system-aarch64 --version | head -1 | awk '{print $4}'), dtc $(dtc --version | awk '{print $3}'), $(swift --version 2>&1 | head -1)"
