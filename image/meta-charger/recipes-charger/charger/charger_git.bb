# nooelint: oelint.var.mandatoryvar.HOMEPAGE,oelint.var.suggestedvar.BUGTRACKER
# (HOMEPAGE, BUGTRACKER: the project has no public home page or tracker yet.)
SUMMARY = "EV charger firmware: IEC 61851-1 CS controller, SLAC, OCPP 2.0.1, Josev API bus"
DESCRIPTION = "One Python process on one asyncio loop: the control-pilot state machine \
               that switches the contactor, SLAC to a QCA7000 modem, an OCPP 2.0.1 \
               client and the Josev API over MQTT, with the EXI codec as a C extension."
SECTION = "applications"
CVE_PRODUCT = "charger"
# setup.cfg: license = Apache-2.0. The tree has no license file of its own yet, so the
# common licence text stands in for it.
LICENSE = "Apache-2.0"
# nooelint: oelint.var.licenseremotefile - no license file in the source tree (see above)
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

# The layer lives in the application's own repository (image/meta-charger): by default
# the source is the commit checked out there, so an image is built from committed code
# only. A release pins CHARGER_REPO, CHARGER_BRANCH and SRCREV in its kas file.
CHARGER_REPO ??= "${@os.path.normpath(os.path.join(d.getVar('FILE_DIRNAME'), '../../../..'))}"
CHARGER_BRANCH ??= "main"
PV = "0.1+git"
SRC_URI = "git://${CHARGER_REPO};protocol=file;branch=${CHARGER_BRANCH} \
           file://charger.service \
           file://charger-mqtt-credentials.service \
           file://charger-mqtt-credentials \
           file://charger.toml \
           file://10-board.toml \
           file://60-charger-hw.rules \
           file://charger-rauc.conf \
           file://50-charger-reboot.rules \
           "
# nooelint: oelint.vars.autorev - development default (the checkout the layer is in); releases pin SRCREV
SRCREV ??= "${AUTOREV}"

S = "${WORKDIR}/git"

# setup.cfg + pyproject.toml (setuptools.build_meta); setup.py declares the EXI
# codec's C extension, compiled here with the target's compiler.
inherit python_setuptools_build_meta systemd useradd

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/charger --no-create-home \
                       --shell /sbin/nologin --user-group charger"

SYSTEMD_SERVICE:${PN} = "charger.service charger-mqtt-credentials.service"
SYSTEMD_AUTO_ENABLE = "enable"

do_install:append() {
    # The C extension must have been built: without it the codec would fall back to
    # Python at a fraction of the speed, which is not what a station ships.
    if ! ls ${D}${PYTHON_SITEPACKAGES_DIR}/charger/protocols/exi/_exi*.so >/dev/null 2>&1; then
        bbfatal "the EXI codec's C extension (charger.protocols.exi._exi) was not built"
    fi
    # Likewise the CP sampler's: without it the board cannot measure the control pilot.
    if ! ls ${D}${PYTHON_SITEPACKAGES_DIR}/charger/hal/rpi/_cpsample*.so >/dev/null 2>&1; then
        bbfatal "the CP sampler's C extension (charger.hal.rpi._cpsample) was not built"
    fi

    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${WORKDIR}/charger.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${WORKDIR}/charger-mqtt-credentials.service ${D}${systemd_system_unitdir}/
    # The charger marks its slot good itself, after its health check on the new
    # firmware (docs/firmware-update.md): meta-rauc's rauc-mark-good, which would mark
    # every slot that boots, is masked. It calls RAUC over D-Bus and reboots through
    # logind as its own user: a D-Bus policy and a polkit rule allow exactly that.
    install -d ${D}${sysconfdir}/systemd/system
    ln -sf /dev/null ${D}${sysconfdir}/systemd/system/rauc-mark-good.service
    install -d ${D}${datadir}/dbus-1/system.d
    install -m 0644 ${WORKDIR}/charger-rauc.conf ${D}${datadir}/dbus-1/system.d/
    install -d -m 0700 ${D}${datadir}/polkit-1/rules.d
    install -m 0644 ${WORKDIR}/50-charger-reboot.rules ${D}${datadir}/polkit-1/rules.d/
    install -d ${D}${libexecdir}/charger
    install -m 0755 ${WORKDIR}/charger-mqtt-credentials ${D}${libexecdir}/charger/mqtt-credentials
    sed -i -e 's,@LIBEXECDIR@,${libexecdir},g' -e 's,@BINDIR@,${bindir},g' \
        ${D}${systemd_system_unitdir}/charger.service \
        ${D}${systemd_system_unitdir}/charger-mqtt-credentials.service

    # /etc/charger/charger.toml belongs to the image; conf.d/10-board.toml is the
    # board's drop-in. Sites add 50-site.toml etc.: conf.d is an overlay whose upper
    # directory is on the data partition (base-files' fstab), so theirs survive updates.
    install -d ${D}${sysconfdir}/charger/conf.d
    install -m 0644 ${WORKDIR}/charger.toml ${D}${sysconfdir}/charger/charger.toml
    install -m 0644 ${WORKDIR}/10-board.toml ${D}${sysconfdir}/charger/conf.d/10-board.toml

    # Device access for the charger group: SPI ADC, GPIO, the CP PWM.
    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${WORKDIR}/60-charger-hw.rules ${D}${nonarch_base_libdir}/udev/rules.d/

    # The persistent directories on /data that base-files' fstab binds and overlays:
    # wic copies /data into the data partition when the card is made (charger-ab.wks.in).
    install -d -m 0700 -o charger -g charger ${D}/data/charger/state
    install -d -m 0755 ${D}/data/charger/conf.d ${D}/data/charger/.conf.d-work
    install -d -m 0700 -o charger -g charger ${D}${localstatedir}/lib/charger
}

FILES:${PN} += "\
    ${systemd_system_unitdir} \
    ${libexecdir}/charger \
    ${nonarch_base_libdir}/udev/rules.d \
    /data/charger \
    ${localstatedir}/lib/charger \
    ${sysconfdir}/systemd/system/rauc-mark-good.service \
    ${datadir}/dbus-1/system.d \
    ${datadir}/polkit-1/rules.d \
"
CONFFILES:${PN} = "${sysconfdir}/charger/charger.toml ${sysconfdir}/charger/conf.d/10-board.toml"

# What the package needs at run time; tests/unit/test_image.py checks this list against
# setup.cfg (install_requires and the rpi extra) and an ast walk of charger/'s imports.
# - python3-modules: the whole standard library. How python3 splits it into python3-*
#   packages is that recipe's business, and a missing stdlib module would only show on
#   a station.
# - python3-gpiod, python3-pymodbus, python3-pyserial, python3-spidev (meta-python),
#   rpi-gpio (meta-raspberrypi): setup.cfg's rpi extra (libgpiod v2's Python binding,
#   the Modbus meter, the meter's and the card reader's serial ports, the CP ADC; RPi.GPIO
#   for gpio_backend = "rpi-gpio" on a Pi 4).
# - mosquitto: the broker (mqtt.broker = "external"), and mosquitto_passwd for the
#   accounts (charger-mqtt-credentials).
# - util-linux-setpriv: a broker the charger spawns itself runs under setpriv --pdeathsig.
RDEPENDS:${PN} += "\
    mosquitto \
    python3-aiohttp \
    python3-aiomqtt \
    python3-cbor2 \
    python3-cryptography \
    python3-dbus-fast \
    python3-gpiod \
    python3-jsonschema-rs \
    python3-modules \
    python3-ocpp \
    python3-paho-mqtt \
    python3-pymodbus \
    python3-pyroute2 \
    python3-pyserial \
    python3-spidev \
    python3-websockets \
    rpi-gpio \
    util-linux-setpriv \
"
