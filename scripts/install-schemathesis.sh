#!/usr/bin/env bash
# Installs schemathesis (PyPI) into a virtualenv outside the clone, once; later runs reuse
# it. Prints the path of the `schemathesis` executable. The API contract test
# (order-svc/tests/openapi.rs) runs it against the real order-svc.
set -euo pipefail
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
version="4.32.5"
venv="$tools_root/schemathesis-$version"
# Once, under a lock, with its marker written last (scripts/lib/tools.sh).
install_once "$venv" "schemathesis $version" pip_venv "$venv" "schemathesis==$version"
echo "$venv/bin/schemathesis"
