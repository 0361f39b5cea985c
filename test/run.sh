#!/usr/bin/env bash
# `npm test`: installs what is missing (idempotent, cached), then type-checks, lints and runs every
# suite against real components. Suites that need services start and stop them themselves.
# Usage: npm test [-- FILTER...]   (FILTER: paths or directories of *.test.ts files)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "== typecheck"; tsc -p tsconfig.json
echo "== lint"; eslint .
if [ $# -gt 0 ]; then roots=("$@"); else roots=(ovsdb lib bin cni node-agent activities workflows watchers deploy test); fi
mapfile -t files < <(find "${roots[@]}" -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "no test files under: ${roots[*]}" >&2; exit 1; }
echo "== node --test (${#files[@]} files)"
# One file at a time: the end-to-end suites each own the cluster in a box while they run.
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
