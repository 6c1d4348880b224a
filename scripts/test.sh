#!/usr/bin/env bash
# The whole test suite, in one command: makes sure PostgreSQL, Redis and RabbitMQ are running
# (starting any that is installed but stopped), then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-services.sh
exec cargo test --workspace "$@"
