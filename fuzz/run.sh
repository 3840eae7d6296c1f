#!/usr/bin/env bash
# Seeds the three fuzz targets from the project's models and data, then runs each for
# SECONDS (default 600) on nightly:  fuzz/run.sh [SECONDS] [TARGET...]
# Needs `cargo install cargo-fuzz` and the nightly toolchain. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(load_model parse_expr read_sam)
mkdir -p fuzz/corpus/load_model fuzz/corpus/parse_expr fuzz/corpus/read_sam
for f in models/*.toml models/reference/*.toml tests/data/*.toml tests/bad_inputs/*.toml; do
  cp "$f" "fuzz/corpus/load_model/seed_$(basename "$f")"
  # every quoted string of a model is an expression seed
  { grep -o '"[^"]*"' "$f" || true; } | tr -d '"' | while read -r e; do
    printf '%s' "$e" > "fuzz/corpus/parse_expr/seed_$(basename "$f" .toml)_$(printf '%s' "$e" | cksum | cut -d' ' -f1)"
  done
done
for f in data/*.csv tests/data/*.csv; do
  [ -f "$f" ] && cp "$f" "fuzz/corpus/read_sam/seed_$(basename "$f")"
done
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=65536 -timeout=10 2>&1 | tail -n 4
done
