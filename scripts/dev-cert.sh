#!/usr/bin/env bash
# Generates the API gateway's self-signed development certificate: ECDSA P-256, subject
# alternative names localhost and 127.0.0.1, valid 30 days, written as tls.crt and tls.key
# into deploy/gateway/tls/ (or the directory given). An existing certificate or key is never
# overwritten unless --force is given.
#
#   bash scripts/dev-cert.sh [--force] [DIR]
#   curl --cacert deploy/gateway/tls/tls.crt https://localhost:8443/api/v1/products
#
# docker-compose.yml mounts the two files as the gateway's secrets tls.crt and tls.key
# (/etc/minipay/tls/). They are not committed (.gitignore). The key is left readable by
# everyone (0644): Compose bind-mounts a file secret with its owner and mode on the host
# (its uid/gid/mode settings do not apply to file secrets), and the gateway runs as uid
# 10001, not as you. That is acceptable for a throwaway development key only; a real key
# belongs in a Kubernetes Secret (k8s/README.md, "Gateway").
set -euo pipefail

usage() {
    echo "usage: $0 [--force] [DIR]   (DIR defaults to deploy/gateway/tls)" >&2
    exit 2
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
force=0
dir=""
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h | --help) usage ;;
        -*) echo "dev-cert: unknown option $arg" >&2; usage ;;
        *)
            [ -z "$dir" ] || usage
            dir="$arg"
            ;;
    esac
done
dir="${dir:-$repo/deploy/gateway/tls}"

if [ "$force" -eq 0 ]; then
    for file in "$dir/tls.crt" "$dir/tls.key"; do
        if [ -e "$file" ]; then
            echo "dev-cert: $file exists; not overwritten (use --force to replace it)" >&2
            exit 1
        fi
    done
fi

mkdir -p "$dir"
# Generated next to its destination, then moved into place: an interrupted run leaves no
# half-written certificate or a key without its certificate.
work="$(mktemp -d "$dir/.dev-cert.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# A leaf certificate (CA:FALSE, serverAuth), not a CA: some TLS clients (rustls, for one)
# refuse a CA certificate presented as a server's.
cat >"$work/openssl.cnf" <<'CNF'
[req]
prompt = no
distinguished_name = dn
x509_extensions = leaf
[dn]
CN = localhost
O = Minipay development
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
CNF
openssl req -x509 -config "$work/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -days 30 -keyout "$work/tls.key" -out "$work/tls.crt" 2>"$work/log" || {
    cat "$work/log" >&2
    echo "dev-cert: openssl failed" >&2
    exit 1
}
chmod 0644 "$work/tls.crt" "$work/tls.key"
mv -f "$work/tls.key" "$dir/tls.key"
mv -f "$work/tls.crt" "$dir/tls.crt"
echo "dev-cert: wrote $dir/tls.crt and $dir/tls.key (self-signed, localhost and 127.0.0.1, 30 days)"
openssl x509 -in "$dir/tls.crt" -noout -subject -enddate
