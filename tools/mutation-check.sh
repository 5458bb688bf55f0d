#!/usr/bin/env bash
# Breaks the code on purpose and shows that the tests catch it (issue 23's
# mutation proof): each mutation replaces one exact piece of source text,
# runs the tests that should catch it, reports which failed and how, and
# restores the file. The files are restored on every exit (a trap, also on
# Ctrl-C), and the script refuses to start when a file it mutates has
# uncommitted changes, so the tree is left as it was found.
#
#   bash tools/mutation-check.sh            # every mutation
#   bash tools/mutation-check.sh NAME...    # some (names below)
#
# Exit status 0 only when every mutation run was caught by at least one of
# its tests. Each Rust mutation rebuilds the crate (minutes on a 2-core
# machine); the tests run are the few named with each mutation.
set -uo pipefail
cd "$(dirname "$0")/.."

backups=$(mktemp -d)
logs=$(mktemp -d)
cleanup() {
  # Every backup is a pristine copy of a committed file: put it back.
  for meta in "$backups"/*.path; do
    [ -e "$meta" ] || continue
    cp -p "${meta%.path}" "$(cat "$meta")"
  done
  rm -rf "$backups" "$logs"
}
# restore BACKUP FILE: copies the pristine text back with a new modification
# time. Keeping the backup's older time (cp -p) would leave cargo's build of
# the mutated file looking up to date, so the next mutation's tests would
# still run the previous mutation's code.
restore() {
  cp "$1" "$2"
  touch "$2"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mutate FILE: replaces the exact text $OLD with $NEW in FILE (exactly one occurrence).
mutate() {
  local file=$1
  if ! git diff --quiet HEAD -- "$file"; then
    echo "mutation-check: $file has uncommitted changes; commit or stash them first" >&2
    exit 2
  fi
  local backup="$backups/$(echo "$file" | tr / _)"
  [ -e "$backup" ] || { cp -p "$file" "$backup"; echo "$file" > "$backup.path"; }
  OLD="$OLD" NEW="$NEW" python3 - "$file" <<'EOF' || exit 2
import os, sys
path = sys.argv[1]
text = open(path).read()
old, new = os.environ["OLD"], os.environ["NEW"]
if text.count(old) != 1:
    sys.exit(f"mutation-check: the text to replace occurs {text.count(old)} times in {path}, not once")
open(path, "w").write(text.replace(old, new))
EOF
}

# unmutate FILE: puts FILE back from its backup.
unmutate() {
  local backup="$backups/$(echo "$1" | tr / _)"
  restore "$backup" "$1"
  rm -f "$backup" "$backup.path"
  git diff --quiet HEAD -- "$1" || { echo "mutation-check: $1 differs from HEAD after restoring" >&2; exit 2; }
}

# expect_failure LABEL COMMAND...: runs a test command that the current mutation should make fail.
caught=""
expect_failure() {
  local label=$1; shift
  local log="$logs/run.log"
  echo "  \$ $*"
  if RUST_BACKTRACE=0 "$@" >"$log" 2>&1; then
    echo "    PASSED (the mutation went unnoticed here)"
    grep -E "^test result:" "$log" | sed 's/^/    /'
  else
    if ! grep -qE "^test result:|^---- " "$log"; then
      echo "    the command failed before any test ran:"
      tail -20 "$log" | sed 's/^/    | /'
      return
    fi
    caught="$caught $label"
    echo "    FAILED, as it must:"
    grep -E "^---- .* stdout ----$" "$log" | sed -E 's/^---- (.*) stdout ----$/      failed: \1/'
    # The first assertion message of each failing test (its first two lines).
    grep -A2 -E "panicked at " "$log" | grep -vE "^--$|panicked at|note: run with" | cut -c1-220 | head -8 | sed 's/^/      | /'
    grep -E "^test result:" "$log" | sed 's/^/    /'
  fi
}

status=0
run() {
  local name=$1 what=$2
  echo
  echo "== mutation $name: $what"
}
verdict() {
  if [ -n "$caught" ]; then
    echo "  => caught by:$caught"
  else
    echo "  => NOT CAUGHT"
    status=1
  fi
  caught=""
}

# ---------------------------------------------------------------- the mutations

m_profile_drop_waits() {
  run profile-drop-waits "item 1: the profile's measured sum leaves out a part (the waits for the GPU)"
  OLD='let measured_ns: f64 = profile.host_ns.iter().map(|(_, ns)| ns).sum();'
  NEW='let measured_ns: f64 = profile.host_ns.iter().filter(|(c, _)| *c != WAITS).map(|(_, ns)| ns).sum();'
  mutate src/report/profile.rs
  expect_failure tests/profile.rs cargo test --test suite profile::
  unmutate src/report/profile.rs
  verdict
}

m_profile_overlapping_spans() {
  run profile-overlapping-spans "item 1: a closing span does not resume the one around it, so that one is charged the inner span's time again"
  OLD='            s.spans.truncate(self.depth - 1);
            if let Some((_, since)) = s.spans.last_mut() {
                *since = now;
            }'
  NEW='            s.spans.truncate(self.depth - 1);'
  mutate src/gpu/profile.rs
  expect_failure tests/profile.rs cargo test --test suite profile::
  unmutate src/gpu/profile.rs
  verdict
}

m_pad_before_rounds_up() {
  run pad-before-rounds-up "item 4: 'same' padding puts the larger half before (pad_before rounds up), in the references and the kernels alike"
  OLD='        Ok((th / 2, tw / 2))'
  NEW='        Ok((th.div_ceil(2), tw.div_ceil(2)))'
  mutate src/ops/window.rs
  expect_failure "src/ops/window.rs (hand-worked table)" cargo test --lib ops::window
  expect_failure tests/padding_goldens.rs cargo test --test suite padding_goldens::
  unmutate src/ops/window.rs
  verdict
}

m_tfjs_swap_bn_statistics() {
  run tfjs-swap-bn-statistics "item 5: the TF.js conversion of InceptionV3 swaps two same-shaped tensors (each BatchNorm's moving_mean and moving_variance)"
  OLD='            let t = &model.weights[have[var]];'
  NEW='            let source = match *var { "moving_mean" => "moving_variance", "moving_variance" => "moving_mean", v => v };
            let t = &model.weights[have[&source]];'
  mutate src/io/tfjs.rs
  expect_failure tests/weights.rs cargo test --test suite weights::converts_synthetic_inception_v3
  unmutate src/io/tfjs.rs
  verdict
}

m_keras_kernel_transposed() {
  run keras-kernel-transposed "item 6: the Keras import transposes each square conv kernel's rows and columns (shape unchanged)"
  OLD='        let kernel = take(file, conv, &["kernel"], &[spec.kernel_shape()], &conv_name(k))?;'
  NEW='        let mut kernel = take(file, conv, &["kernel"], &[spec.kernel_shape()], &conv_name(k))?;
        if let Some(t) = kernel.first_mut().filter(|t| t.shape.len() == 4 && t.shape[0] == t.shape[1]) {
            let (side, inner, old) = (t.shape[0], t.shape[2] * t.shape[3], t.data.clone());
            for y in 0..side {
                for x in 0..side {
                    let (dst, src) = ((y * side + x) * inner, (x * side + y) * inner);
                    t.data[dst..dst + inner].copy_from_slice(&old[src..src + inner]);
                }
            }
        }'
  mutate src/io/keras_import.rs
  expect_failure tests/keras_import.rs cargo test --test suite keras_import::
  unmutate src/io/keras_import.rs
  verdict
}

m_python_converter_swap() {
  run python-converter-swap "item 6: the Python converter (tools/keras_h5_to_safetensors.py) swaps each BatchNorm's moving_mean and moving_variance"
  OLD='            tensors[f"{keras3_name('"'"'batch_normalization'"'"', k)}/{var}"] = bw[var]'
  NEW='            swapped = {"moving_mean": "moving_variance", "moving_variance": "moving_mean"}.get(var, var)
            tensors[f"{keras3_name('"'"'batch_normalization'"'"', k)}/{var}"] = bw[swapped]'
  mutate tools/keras_h5_to_safetensors.py
  expect_failure tests/keras_import.rs cargo test --test suite keras_import::the_base_alone
  unmutate tools/keras_h5_to_safetensors.py
  verdict
}

ALL=(profile-drop-waits profile-overlapping-spans pad-before-rounds-up tfjs-swap-bn-statistics keras-kernel-transposed python-converter-swap)
selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${ALL[@]}")
for name in "${selected[@]}"; do
  fn="m_${name//-/_}"
  if ! declare -F "$fn" >/dev/null; then
    echo "mutation-check: unknown mutation '$name'; known: ${ALL[*]}" >&2
    exit 2
  fi
  "$fn"
done
echo
if [ "$status" = 0 ]; then echo "mutation-check: every mutation was caught"; else echo "mutation-check: some mutation was NOT caught"; fi
exit "$status"
