# What boot.cmd.in needs of U-Boot: ext4 (the kernel is in the slot's /boot), setexpr
# (the attempt counters) and the environment in uboot.env on the firmware partition,
# which RAUC edits through fw_setenv (libubootenv's fw_env.config).
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"

SRC_URI:append:charger = " file://charger-ab-boot.cfg"
