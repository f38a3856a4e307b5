# The QCA7000 PLC modem's interface is plc0, whatever order the kernel probes it in
# (the Pi's own Ethernet is eth0, a USB adapter would be eth1...): matched by its
# driver, qcaspi, on any Raspberry Pi.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"

SRC_URI:append:charger = " file://10-plc0.link"

do_install:append:charger() {
    install -d ${D}${systemd_unitdir}/network
    install -m 0644 ${WORKDIR}/10-plc0.link ${D}${systemd_unitdir}/network/10-plc0.link
}

FILES:${PN}:append:charger = " ${systemd_unitdir}/network/10-plc0.link"
