# RAUC's system.conf and the keyring that bundles are checked against.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"

# The certificate of the CA whose signer signs bundles: image/keys/ca.cert.pem from
# image/scripts/make-dev-keys.sh, or the release's (CHARGER_RAUC_KEY_DIR, see
# image/README.md). Only the certificate goes into the image, never a key.
RAUC_KEYRING_FILE:charger = "ca.cert.pem"
RAUC_KEYRING_URI:charger = "file://${CHARGER_RAUC_KEY_DIR}/${RAUC_KEYRING_FILE}"

do_install:append:charger() {
    sed -i -e 's/@@MACHINE@@/${MACHINE}/' ${D}${sysconfdir}/rauc/system.conf
}
