#!/usr/bin/env bash
# Installs schemathesis (PyPI) into a virtualenv outside the clone, once; later runs reuse
# it. Prints the path of the `schemathesis` executable. The API contract test
# (order-svc/tests/openapi.rs) runs it against the real order-svc.
set -euo pipefail
version="4.32.5"
root="${MINIPAY_TOOLS:-/var/cache/minipay-tools}"
venv="$root/schemathesis-$version"
# The marker is written last, so an interrupted install is redone, not trusted.
if [ ! -f "$venv/.installed" ]; then
    mkdir -p "$root"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
    touch "$venv/.installed"
fi
echo "$venv/bin/schemathesis"
