#!/bin/sh
# Makes a DEVELOPMENT key pair for signing RAUC bundles, in image/keys/ (git-ignored):
#   ca.key.pem / ca.cert.pem                 a development CA; its certificate is the
#                                            keyring in the image (/etc/rauc/ca.cert.pem)
#   development-1.key.pem / .cert.pem        the signing key and its certificate (code
#                                            signing), issued by that CA
# Never for production: a release signs with keys that never sit on a build machine
# in the clear (image/README.md, "Signing updates"). Refuses to overwrite existing keys:
# an image only installs bundles signed under the CA it was built with.
#
#   image/scripts/make-dev-keys.sh [DIR]     (default: image/keys)
set -eu

dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/keys"}
days=${DAYS:-3650}
org=${ORG:-"Charger development"}

if [ -e "$dir/ca.cert.pem" ] || [ -e "$dir/development-1.key.pem" ]; then
    echo "make-dev-keys: $dir already holds keys; remove them first to start over" >&2
    exit 1
fi
command -v openssl >/dev/null || { echo "make-dev-keys: needs openssl" >&2; exit 1; }

mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
cd "$dir"

cat > openssl.cnf <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
O = $org
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_signer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -config openssl.cnf -extensions v3_ca -subj "/O=$org/CN=$org CA" -days "$days" \
    -keyout ca.key.pem -out ca.cert.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -config openssl.cnf -subj "/O=$org/CN=$org signer 1" \
    -keyout development-1.key.pem -out development-1.csr.pem 2>/dev/null
openssl x509 -req -in development-1.csr.pem -CA ca.cert.pem -CAkey ca.key.pem \
    -CAcreateserial -extfile openssl.cnf -extensions v3_signer -days "$days" \
    -out development-1.cert.pem 2>/dev/null
rm -f development-1.csr.pem ca.cert.srl openssl.cnf
chmod 0600 ./*.key.pem
chmod 0644 ./*.cert.pem
echo "make-dev-keys: development keys in $dir (CA: ca.cert.pem, signer: development-1.*)"
