# mosquitto for the charger: loopback only, no anonymous client, a password file made
# at boot by charger-mqtt-credentials.service, per-role ACLs. Only with DISTRO = "charger":
# the layer changes nothing for another distribution.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"

SRC_URI:append:charger = " \
    file://mosquitto.conf \
    file://charger.acl \
    file://mosquitto-charger.conf \
"

do_install:append:charger() {
    install -m 0644 ${WORKDIR}/mosquitto.conf ${D}${sysconfdir}/mosquitto/mosquitto.conf
    # mosquitto reads its ACL as user mosquitto and wants it private to that user.
    install -m 0600 -o mosquitto -g mosquitto ${WORKDIR}/charger.acl ${D}${sysconfdir}/mosquitto/charger.acl
    install -d ${D}${systemd_system_unitdir}/mosquitto.service.d
    install -m 0644 ${WORKDIR}/mosquitto-charger.conf ${D}${systemd_system_unitdir}/mosquitto.service.d/charger.conf
}

FILES:${PN}:append:charger = " ${systemd_system_unitdir}/mosquitto.service.d"
CONFFILES:${PN}:append:charger = " ${sysconfdir}/mosquitto/charger.acl"
