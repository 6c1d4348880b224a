#!/usr/bin/env bash
# The sample Mini Program's tests (clients/miniprogram): installs its npm packages once
# (scripts/install-miniprogram-deps.sh), type-checks it against miniprogram-api-typings
# (and the API module alone, without them), then runs the API module's unit tests and the
# component and page tests (jest + miniprogram-simulate). Needs no running service; the
# end-to-end test against the real stack is `npm run test:e2e` (crates/minipay runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-miniprogram-deps.sh > /dev/null
cd clients/miniprogram
npm run --silent typecheck
npm test --silent -- --ci "$@"
