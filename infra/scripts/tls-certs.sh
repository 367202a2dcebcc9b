#!/usr/bin/env bash
# A private CA and, signed by it, a certificate for 127.0.0.1 and localhost, in DIR: for a
# Redis or S3 server behind TLS on this machine (tests, `fleet up`). Keys are mode 0600.
#   tls-certs.sh DIR [NAME...]   writes DIR/ca.pem, DIR/ca.key, and for each NAME (default:
#                                server) DIR/NAME.pem + DIR/NAME.key; prints DIR
# The certificates serve as server and as client certificates (extendedKeyUsage both), so a
# server with `tls-auth-clients yes` accepts them too. An existing CA in DIR is kept.
# TLS_CERT_HOSTS=name,ip,... the names they hold instead (e.g. redis.tensorfleet.svc.cluster.local).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $(basename "$0") DIR [NAME...]" >&2; exit 1; }
DIR=$1; shift
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=(server)
command -v openssl >/dev/null || { echo "[tls-certs] error: openssl is not installed (Debian: apt-get install openssl)" >&2; exit 1; }
SAN=""
IFS=, read -ra HOSTS <<<"${TLS_CERT_HOSTS:-127.0.0.1,localhost}"
for h in "${HOSTS[@]}"; do
  [ -n "$h" ] || continue
  if [[ "$h" =~ ^[0-9.]+$|: ]]; then SAN+="${SAN:+,}IP:$h"; else SAN+="${SAN:+,}DNS:$h"; fi
done
[ -n "$SAN" ] || { echo "[tls-certs] error: TLS_CERT_HOSTS names no host" >&2; exit 1; }
mkdir -p "$DIR"
umask 077
if [ ! -s "$DIR/ca.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=TensorFleet test CA $(basename "$DIR")" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
fi
for name in "${NAMES[@]}"; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$DIR/$name.key" -out "$DIR/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$SAN" >"$DIR/$name.ext"
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 3650 \
    -extfile "$DIR/$name.ext" -out "$DIR/$name.pem" 2>/dev/null
  rm -f "$DIR/$name.csr" "$DIR/$name.ext"
done
chmod 0644 "$DIR"/*.pem
echo "$DIR"
