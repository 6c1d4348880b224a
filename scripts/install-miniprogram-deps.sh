#!/usr/bin/env bash
# Installs the sample Mini Program's npm packages (clients/miniprogram: TypeScript,
# miniprogram-api-typings, jest, miniprogram-simulate), exactly as its package-lock.json pins
# them, into a directory outside the clone named after the lock's hash, once; later runs
# reuse it. clients/miniprogram/node_modules becomes a symlink to it. Prints that directory.
set -euo pipefail
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
cd "$(dirname "$0")/.."
app="clients/miniprogram"
hash="$(sha256sum "$app/package-lock.json" | cut -c1-16)"
dir="$tools_root/miniprogram-$hash"

install_packages() {
    mkdir -p "$dir" &&
        cp "$app/package.json" "$app/package-lock.json" "$dir/" &&
        (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
}

if ! tools_installed "$dir" && ! command -v npm >/dev/null; then
    echo "install-miniprogram-deps: npm is missing; install Node.js 20 or later (apt-get install nodejs npm)" >&2
    exit 1
fi
# Once, under a lock (two tests starting on a machine without the packages take turns, and
# the second finds the first one's install), with its marker written last (scripts/lib/tools.sh).
install_once "$dir" "the Mini Program's npm packages into $dir" install_packages
# Replace whatever is there (a stale link, or a directory a bare `npm install` made).
if [ "$(readlink "$app/node_modules" 2>/dev/null)" != "$dir/node_modules" ]; then
    rm -rf "$app/node_modules"
    ln -s "$dir/node_modules" "$app/node_modules"
fi
echo "$dir"
