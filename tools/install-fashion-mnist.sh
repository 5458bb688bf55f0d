#!/usr/bin/env bash
# Installs Debian's `dataset-fashion-mnist` (MIT; IDX files under
# /usr/share/datasets/fashion-mnist) when its files are missing. `incept`
# builds the default fmnist4 dataset from them (src/data/fashion_mnist.rs).
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
have=1
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$dir/$f.gz" ] || [ -f "$dir/$f" ] || have=0
done
if [ "$have" = 1 ]; then
  echo "install-fashion-mnist: already installed in $dir"; exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-fashion-mnist: apt-get not found; install Debian's dataset-fashion-mnist package, or pass the folder holding the four IDX files" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-fashion-mnist: run as root (apt-get install -y dataset-fashion-mnist)" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null \
  || { $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
echo "install-fashion-mnist: installed dataset-fashion-mnist in $dir"
