#!/usr/bin/env bash
# The whole test suite, in one command: makes sure PostgreSQL, Redis and RabbitMQ are running
# (starting any that is installed but stopped) and schemathesis is installed, then runs every
# test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
# The API contract test runs schemathesis; it is installed once, outside the clone.
bash scripts/install-schemathesis.sh > /dev/null
# The PyPI WeChat Pay v3 SDK the simulator's SDK test drives, installed once outside the clone.
bash scripts/install-wechatpayv3.sh > /dev/null
# The deployment files (compose, kustomize overlays, Dockerfile, Prometheus) checked offline.
bash scripts/validate-deploy.sh
# The Mini Program sample (clients/miniprogram): its npm dependencies, installed once outside
# the clone, its typecheck and its component and page tests. Its end-to-end suite runs inside
# cargo test (crates/minipay/tests/miniprogram.rs), against the real stack behind the gateway.
bash scripts/test-miniprogram.sh
exec cargo test --workspace "$@"
