#!/usr/bin/env bash
# Installs Mesa's lavapipe Vulkan driver (CPU) from bookworm-backports when the
# machine has no Vulkan ICD yet. The backports entry is derived from the
# machine's own Debian sources file, so no package host is named here.
set -euo pipefail
# Any installed ICD manifest plus the loader means a driver is present already.
if { compgen -G '/usr/share/vulkan/icd.d/*.json' || compgen -G '/etc/vulkan/icd.d/*.json'; } >/dev/null \
   && ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  echo "install-vulkan: a Vulkan driver is already installed"; exit 0
fi
src=/etc/apt/sources.list.d/debian.sources
bp=/etc/apt/sources.list.d/incept-backports.sources
if [ -f "$src" ] && [ ! -f "$bp" ]; then
  # First stanza of the machine's own deb822 file, with the suite swapped.
  awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$src" \
    | sed -E 's/^Suites:.*/Suites: bookworm-backports/' > "$bp"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null; then
  echo "install-vulkan: installed mesa-vulkan-drivers from bookworm-backports"
else
  echo "install-vulkan: backports unavailable, installing bookworm's mesa-vulkan-drivers"
  apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
dpkg -l mesa-vulkan-drivers | tail -1
