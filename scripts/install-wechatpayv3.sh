#!/usr/bin/env bash
# Installs the PyPI WeChat Pay v3 SDK `wechatpayv3` (an SDK Minipay does not use itself) into a
# virtualenv outside the clone, once; later runs reuse it. Prints the path of that virtualenv's
# `python3`. The simulator's SDK test (crates/wechatpay-sim/tests/sdk_v3.rs) points the SDK at
# the simulator to show that an existing v3 SDK works against it unchanged.
set -euo pipefail
# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
version="2.0.4"
venv="$tools_root/wechatpayv3-$version"
# Once, under a lock, with its marker written last (scripts/lib/tools.sh).
install_once "$venv" "wechatpayv3 $version" pip_venv "$venv" "wechatpayv3==$version" "cryptography==46.0.3" "requests==2.32.5"
echo "$venv/bin/python3"
