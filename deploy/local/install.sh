#!/usr/bin/env bash
# The one install step: npm packages first (kovn's own code runs on the Node 24 they bring), then
# `kovn install` for Debian packages, Go-built tools (cached outside the checkout) and the pod image.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=node_modules/.kovn-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error || { echo "install failed: npm ci" >&2; exit 1; }
  echo "$want" >"$stamp"
fi
exec node_modules/.bin/node bin/kovn.ts install
