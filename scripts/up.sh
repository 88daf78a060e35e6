#!/usr/bin/env bash
# `npm run up`: install, build, make sure a Docker engine and every template image exist, then run
# a worker in the foreground (127.0.0.1:5000; base=5,code-interpreter=1 unless SANDPOOL_* or flags
# say otherwise).
#   npm run up -- --pool-size 10 --port 5001
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Reinstall only when the lock file changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
npm run build
bash scripts/provision.sh
exec node packages/server/dist/cli/main.js serve "$@"
