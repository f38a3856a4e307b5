# The A/B boot script RAUC's U-Boot backend drives (BOOT_ORDER, BOOT_A_LEFT,
# BOOT_B_LEFT), in place of meta-raspberrypi's boot.cmd.in.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"
