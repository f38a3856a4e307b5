# nooelint: oelint.var.suggestedvar.BUGTRACKER
# (No BUGTRACKER: the project has no public tracker yet.)
SUMMARY = "Raspberry Pi image of the EV charger firmware"
DESCRIPTION = "core-image with the charger, its MQTT broker, RAUC for A/B updates, \
               and what the charger runs (setpriv for a broker it spawns itself)."
SECTION = "images"
LICENSE = "MIT"
CVE_PRODUCT = ""

inherit core-image

IMAGE_FEATURES += "ssh-server-dropbear"

IMAGE_INSTALL:append = " \
    charger \
    kernel-image \
    kernel-modules \
    libubootenv-bin \
    mosquitto \
    polkit \
    rauc \
    util-linux-setpriv \
"

# wic: firmware partition, rootfs A and B, data (wic/charger-ab.wks.in); the root file
# system as ext4 for the RAUC bundle; bmap for bmaptool.
IMAGE_FSTYPES = "ext4 wic.bz2 wic.bmap"
WKS_FILE = "charger-ab.wks.in"
WKS_FILE_DEPENDS:append = " dosfstools-native mtools-native e2fsprogs-native"

# A slot is a fixed 2 GiB partition: the root file system must fit in it.
IMAGE_ROOTFS_MAXSIZE = "2097152"
