#!/usr/bin/env bash
# Proof of `incept report` in a real browser (tools/report-check/check_report.py):
# builds incept, makes a tiny run with every part a report shows (training
# with --profile, evaluate, explain), writes its report, then has headless
# Chromium (Debian's package) render the page to a screenshot and dump its
# DOM, and checks that the page shows every section with the run's numbers
# and loads nothing from outside itself.
#
# Chromium is installed with apt-get when missing. Where it cannot be
# installed (no root, no Debian repository, over INSTALL_TIMEOUT seconds),
# the check prints a SKIPPED line and exits 0: it is the only check that
# a machine may lack the means for.
#
# Needs: cargo, weights/mobilenet_v2_notop.safetensors (weights/fetch.sh),
# Debian's Fashion-MNIST (tools/install-fashion-mnist.sh), python3.
# Usage: tools/report-check/run.sh [--screenshot PNG]
set -euo pipefail
# A command that fails under set -e is named, never a silent exit.
trap 'echo "report-check: FAILED at line $LINENO: $BASH_COMMAND (status $?)" >&2' ERR
cd "$(dirname "$0")/../.."
here=tools/report-check
weights=weights/mobilenet_v2_notop.safetensors
screenshot=""
[ "${1:-}" = "--screenshot" ] && screenshot="$2"
fail() { echo "report-check: FAILED: $*" >&2; exit 1; }
[ -f "$weights" ] || fail "$weights is missing (run weights/fetch.sh)"

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if ! timeout "${INSTALL_TIMEOUT:-600}" bash -c "$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null"; then
    echo "report-check: SKIPPED the browser check of incept report: Debian's chromium could not be installed here (apt-get install chromium)"
    exit 0
  fi
  chromium=$(command -v chromium) || fail "apt-get installed chromium but it is not on PATH"
fi

cargo build --quiet --locked --bin incept
incept=target/debug/incept
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$incept" data fashion-mnist --out "$work/fmnist4" >/dev/null
# Three training, two validation and two test images per class.
for split_count in train:3 valid:2 test:2; do
  split=${split_count%:*}; count=${split_count#*:}
  for class_dir in "$work/fmnist4/$split"/*/; do
    class=$(basename "$class_dir")
    mkdir -p "$work/data/$split/$class"
    # No `| head` here: with pipefail, the writer it cuts off (SIGPIPE) would end the script silently.
    mapfile -t images < <(find "$class_dir" -name '*.png' | sort)
    cp "${images[@]:0:$count}" "$work/data/$split/$class/"
  done
done
run="$work/run"
quiet() { "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log"; fail "$* failed"; }; }
quiet "$incept" train --data "$work/data" --weights "$weights" --out "$run" --image-size 75 --epochs 2 --batch 3 --seed 1 --profile
quiet "$incept" evaluate --model "$run" --data "$work/data/test" --top-losses 4
classes=("$work/data/test"/*/)
first_class=$(basename "${classes[0]}")
quiet "$incept" explain --model "$run" --out "$run/gradcam" "$work/data/test/$first_class"
quiet "$incept" report "$run"

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/chromium-profile")
"$chromium" "${flags[@]}" --dump-dom "file://$run/report.html" >"$work/dom.html" 2>"$work/chromium.log" \
  || { cat "$work/chromium.log"; fail "chromium could not render $run/report.html"; }
"$chromium" "${flags[@]}" --hide-scrollbars --window-size=1200,2600 --screenshot="$work/report.png" "file://$run/report.html" \
  >/dev/null 2>>"$work/chromium.log" || { cat "$work/chromium.log"; fail "chromium could not take a screenshot of the report"; }
python3 "$here/check_report.py" --run "$run" --dom "$work/dom.html" --html "$run/report.html" --screenshot "$work/report.png"
if [ -n "$screenshot" ]; then cp "$work/report.png" "$screenshot"; fi
