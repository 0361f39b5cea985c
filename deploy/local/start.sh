#!/usr/bin/env bash
# `npm start [-- --nodes N]`: install whatever is missing, then bring the cluster in a box up.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/install.sh
exec node_modules/.bin/node bin/kovn.ts up "$@"
