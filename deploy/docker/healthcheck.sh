#!/bin/bash
# Container health probe without curl: GET http://127.0.0.1:PORT/PATH over bash's /dev/tcp;
# exit 0 only on a 2xx status line. Usage: healthcheck PORT [PATH] (PATH defaults to /healthz).
set -eu
port="${1:?usage: healthcheck PORT [PATH]}"
path="${2:-/healthz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
    "HTTP/1."?" 2"*) exit 0 ;;
    *) echo "unhealthy: $status" >&2; exit 1 ;;
esac
