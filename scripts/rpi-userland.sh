#!/bin/sh
# Build, or reuse, a cached Debian bookworm arm64 user-land (Raspberry Pi OS's base,
# Python 3.11) that runs under qemu-user, for `make test-rpi`.
# Prints the rootfs path on success. Exit 77 = cannot run here (one-line reason on stderr).
# Needs root: debootstrap, binfmt_misc and chroot.
set -eu
CACHE="${EDGEAFFECT_RPI_CACHE:-/var/cache/edgeaffect/rpi-userland}"
ROOTFS="$CACHE/bookworm-arm64"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
skip() { echo "skip: $*" >&2; exit 77; }

[ "$(id -u)" = "0" ] || skip "not root (debootstrap, binfmt_misc and chroot need root)"
command -v apt-get >/dev/null 2>&1 || skip "not a Debian / Ubuntu machine"
sh "$(dirname "$0")/apt-deps.sh" qemu-user-static binfmt-support debootstrap >&2 \
  || skip "could not install qemu-user-static, binfmt-support and debootstrap (no network to the mirror?)"
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || skip "cannot mount binfmt_misc (container without privileges?)"
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || skip "binfmt for aarch64 is not enabled"

healthy() {
  [ -f "$ROOTFS/.complete" ] && timeout 120 chroot "$ROOTFS" /usr/bin/python3 -c "import venv, ssl" >/dev/null 2>&1
}
if ! healthy; then
  [ -d "$ROOTFS" ] && echo "cached user-land at $ROOTFS is broken or incomplete: rebuilding it" >&2
  rm -rf "$ROOTFS" "$ROOTFS.tmp"
  mkdir -p "$CACHE"
  echo "building bookworm arm64 user-land in $ROOTFS (about 4 minutes, once)" >&2
  timeout 1200 debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,libstdc++6 \
    bookworm "$ROOTFS.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { rm -rf "$ROOTFS.tmp"; skip "debootstrap failed (no network to $MIRROR?): see $CACHE/debootstrap.log"; }
  # XNNPACK's CPU detection reads these; without them it silently runs without XNNPACK.
  mkdir -p "$ROOTFS.tmp/sys/devices/system/cpu"
  echo 0-3 > "$ROOTFS.tmp/sys/devices/system/cpu/possible"
  echo 0-3 > "$ROOTFS.tmp/sys/devices/system/cpu/present"
  touch "$ROOTFS.tmp/.complete"
  mv "$ROOTFS.tmp" "$ROOTFS"
fi
echo "$ROOTFS"
