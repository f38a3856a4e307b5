# The kernel options the charger and RAUC rely on, whatever the defconfig says.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"

SRC_URI:append:charger = " file://charger.cfg"
