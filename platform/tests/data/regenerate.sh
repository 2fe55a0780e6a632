#!/bin/sh
# Regenerates the DTB fixtures in this directory. See README.md for what each one is.
#
# Needs qemu-system-aarch64 (QEMU 10) and dtc. The Pi 4 DTB comes from the Debian kernel
# package that `cargo xtask run --board rpi4` downloads, verifies and unpacks under
# target/debian/; run that once first if the package is not cached yet.
#
# QEMU virt puts fresh random `rng-seed` and `kaslr-seed` values in /chosen on every run,
# so the virt fixtures differ from the committed ones in those bytes only; the tests do
# not look at them.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for gic in 3 2; do
    # dumpdtb writes the tree QEMU generated for this machine and exits.
    qemu-system-aarch64 \
        -M "virt,virtualization=on,gic-version=$gic,dumpdtb=$work/virt-gicv$gic.raw.dtb" \
        -cpu cortex-a72 -smp 4 -m 1G -display none
    # QEMU pads the blob to 1 MiB; dtc writes it back compact.
    dtc -q -I dtb -O dtb -o "$here/virt-gicv$gic.dtb" "$work/virt-gicv$gic.raw.dtb"
done

pkg=linux-image-6.1.0-50-arm64
ver=6.1.176-1
pi="$root/target/debian/unpacked/${pkg}_$ver/usr/lib/$pkg/broadcom/bcm2711-rpi-4-b.dtb"
if [ ! -f "$pi" ]; then
    echo "missing $pi" >&2
    echo "run \`cargo xtask run --board rpi4\` once to fetch $pkg $ver, then rerun this" >&2
    exit 1
fi
cp "$pi" "$here/rpi4-b.dtb"

ls -l "$here"/*.dtb
