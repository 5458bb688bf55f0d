#!/usr/bin/env bash
# Installs Mesa's lavapipe Vulkan driver (CPU) from bookworm-backports when the
# machine has no Vulkan ICD yet. The backports entry is derived from the
# machine's own Debian sources file, so no package host is named here.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || ls /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  if [ -n "$(ls /usr/share/vulkan/icd.d/ 2>/dev/null | grep -i lvp)" ] || [ "${INCEPT_KEEP_ICD:-}" = 1 ]; then
    echo "install-vulkan: a Vulkan driver is already installed"; exit 0
  fi
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
