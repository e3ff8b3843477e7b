#!/bin/sh
# Shows what `mxharden apply` would change on the example host tree, without
# root and without changing anything: it copies examples/root to a temporary
# folder, adds a throw-away self-signed certificate there, and runs a dry run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$here/root" "$work/root"
openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj "/CN=sales.example.com" \
    -addext "subjectAltName=DNS:sales.example.com" \
    -keyout "$work/root/etc/ssl/private/sales.key" -out "$work/root/etc/ssl/certs/sales.pem" 2>/dev/null
chmod 600 "$work/root/etc/ssl/private/sales.key"
cd "$here/.."
cargo run --quiet --release --package mxharden-cli -- apply --dry-run --root "$work/root" examples/app.yaml
