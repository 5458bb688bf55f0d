#!/usr/bin/env bash
# Runs a command against a newer Mesa lavapipe, one that exposes
# VK_KHR_cooperative_matrix (Mesa 26 from Debian trixie-backports), so that
# the cooperative-matrix kernels (shaders/conv2d_coop.wgsl) run for real on
# the CPU. That Mesa needs a newer glibc than this machine's, so it lives in
# a debootstrap'd trixie root (made once, in $COOP_ROOT, by this script, as
# root); binaries built here run inside it with this checkout bind-mounted at
# the same path, VK_ICD_FILENAMES naming its lavapipe.
#
# usage: bash tools/coop-lavapipe.sh COMMAND [ARGS...]   (run from anywhere; the
#        command runs in the repository root, e.g.
#        bash tools/coop-lavapipe.sh target/debug/deps/suite-HASH conv_coop:: --ignored)
# env:   COOP_ROOT (default /var/tmp/incept-trixie), MIRROR (default: the first
#        URI of this machine's own Debian sources), LP_NUM_THREADS (default 2),
#        LP_NATIVE_VECTOR_WIDTH (unset: lavapipe's 256 bits, subgroups of 8;
#        512 gives subgroups of 16, but Mesa 26.1.6 then crashes compiling the
#        cooperative-matrix kernel).
# Mesa 26.1.6's lavapipe lists 8x8x8 configurations only (f16 x f16 -> f16 or
# f32), so it runs the kernel's 8x8-fragment variant.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${COOP_ROOT:-/var/tmp/incept-trixie}
[ $# -ge 1 ] || { echo "usage: bash tools/coop-lavapipe.sh COMMAND [ARGS...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "coop-lavapipe.sh: needs root (debootstrap, chroot, bind mounts)" >&2; exit 1; }

# The archive this machine already uses, so that the script names no host.
mirror=${MIRROR:-$(grep -rhoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -v security | awk '{print $2}' | grep -m1 debian || true)}
[ -n "$mirror" ] || { echo "coop-lavapipe.sh: no Debian archive in /etc/apt; set MIRROR" >&2; exit 1; }

if [ ! -f "$root/.incept-ready" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
  echo "coop-lavapipe.sh: making a trixie root in $root from $mirror (once)"
  debootstrap --variant=minbase trixie "$root" "$mirror"
  cat > "$root/etc/apt/sources.list.d/backports.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" apt-get update -q
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -t trixie-backports mesa-vulkan-drivers libvulkan1
  touch "$root/.incept-ready"
fi

icd=$(ls "$root"/usr/share/vulkan/icd.d/lvp_icd*.json | head -1)
mkdir -p "$root$repo"
mounted=()
cleanup() { for m in "${mounted[@]}"; do umount "$m" || true; done; }
trap cleanup EXIT
for m in /proc /dev "$repo"; do
  if ! mountpoint -q "$root$m"; then
    mount --bind "$m" "$root$m"
    mounted+=("$root$m")
  fi
done
# The repository's data/ and weights/ may be links outside it: bind their targets too.
for link in "$repo"/data "$repo"/weights/*.safetensors; do
  if [ -L "$link" ]; then
    target=$(readlink -f "$link")
    mkdir -p "$root$(dirname "$target")"
    [ -d "$target" ] && mkdir -p "$root$target" || touch "$root$target"
    if ! mountpoint -q "$root$target"; then
      mount --bind "$target" "$root$target"
      mounted+=("$root$target")
    fi
  fi
done
printf -v cmd '%q ' "$@"
chroot "$root" env -i PATH=/usr/bin:/bin HOME=/tmp VK_ICD_FILENAMES="${icd#"$root"}" \
  INCEPT_CACHE_DIR=/tmp/incept-cache LP_NUM_THREADS="${LP_NUM_THREADS:-2}" ${LP_NATIVE_VECTOR_WIDTH:+LP_NATIVE_VECTOR_WIDTH=$LP_NATIVE_VECTOR_WIDTH} \
  sh -c "cd $(printf %q "$repo") && exec $cmd"
