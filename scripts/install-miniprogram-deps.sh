#!/usr/bin/env bash
# Installs the sample Mini Program's npm packages (clients/miniprogram: TypeScript,
# miniprogram-api-typings, jest, miniprogram-simulate), exactly as its package-lock.json pins
# them, into a directory outside the clone named after the lock's hash, once; later runs
# reuse it. clients/miniprogram/node_modules becomes a symlink to it. Prints that directory.
set -euo pipefail
cd "$(dirname "$0")/.."
app="clients/miniprogram"
root="${MINIPAY_TOOLS:-/var/cache/minipay-tools}"
hash="$(sha256sum "$app/package-lock.json" | cut -c1-16)"
dir="$root/miniprogram-$hash"
# The marker is written last, so an interrupted install is redone, not trusted. The install
# holds a lock file in the cache root (util-linux's flock): two tests starting on a machine
# without the packages take turns, and the second finds the first one's install.
if [ ! -f "$dir/.installed" ]; then
    command -v npm > /dev/null || {
        echo "install-miniprogram-deps: npm is missing; install Node.js 20 or later (apt-get install nodejs npm)" >&2
        exit 1
    }
    mkdir -p "$root"
    (
        if ! flock -n 9; then
            echo "install-miniprogram-deps: waiting for another install into $dir (lock $dir.lock)" >&2
            flock 9
        fi
        if [ -f "$dir/.installed" ]; then
            exit 0
        fi
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$app/package.json" "$app/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
        touch "$dir/.installed"
    ) 9> "$dir.lock"
fi
# Replace whatever is there (a stale link, or a directory a bare `npm install` made).
if [ "$(readlink "$app/node_modules" 2>/dev/null)" != "$dir/node_modules" ]; then
    rm -rf "$app/node_modules"
    ln -s "$dir/node_modules" "$app/node_modules"
fi
echo "$dir"
