# nooelint: oelint.file.underscores,oelint.var.mandatoryvar.HOMEPAGE,oelint.var.mandatoryvar.SRC_URI,oelint.var.suggestedvar.BUGTRACKER
# (No version in the file name: a bundle, like an image, has none of its own. No
# HOMEPAGE or BUGTRACKER: part of this project, which has none public yet. No SRC_URI:
# the bundle is made from charger-image.)
SUMMARY = "RAUC update bundle of the charger image"
DESCRIPTION = "A signed dm-verity RAUC bundle with charger-image's root file system \
               for the inactive slot (A/B), installed with 'rauc install'."
SECTION = "base"
LICENSE = "MIT"
CVE_PRODUCT = ""

inherit bundle

RAUC_BUNDLE_COMPATIBLE = "charger-${MACHINE}"
RAUC_BUNDLE_VERSION = "${DISTRO_VERSION}"
RAUC_BUNDLE_DESCRIPTION = "Charger firmware ${DISTRO_VERSION} for ${MACHINE}"
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
RAUC_SLOT_rootfs = "charger-image"
RAUC_SLOT_rootfs[fstype] = "ext4"

# Signed with the key of image/scripts/make-dev-keys.sh unless the release's kas file
# points these at its own (image/README.md, "Signing updates").
RAUC_KEY_FILE ?= "${CHARGER_RAUC_KEY_DIR}/development-1.key.pem"
RAUC_CERT_FILE ?= "${CHARGER_RAUC_KEY_DIR}/development-1.cert.pem"
RAUC_KEYRING_FILE ?= "${CHARGER_RAUC_KEY_DIR}/ca.cert.pem"
