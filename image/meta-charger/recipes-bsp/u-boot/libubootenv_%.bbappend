# Where U-Boot keeps its environment on the Raspberry Pi (uboot.env on the firmware
# partition, mounted at /boot/firmware): fw_printenv/fw_setenv for RAUC.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"

SRC_URI:append:charger = " file://fw_env.config"

do_install:append:charger() {
    install -d ${D}${sysconfdir}
    install -m 0644 ${WORKDIR}/fw_env.config ${D}${sysconfdir}/fw_env.config
}
