SUMMARY = "The idiomatic asyncio MQTT client, wrapped around paho-mqtt"
DESCRIPTION = "An asyncio client for MQTT 5.0 and 3.1.1 on top of paho-mqtt: async \
               context managers for connections, an async iterator for messages."
HOMEPAGE = "https://github.com/empicano/aiomqtt"
BUGTRACKER = "https://github.com/empicano/aiomqtt/issues"
SECTION = "devel/python"
CVE_PRODUCT = "aiomqtt"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=a462083fa4d830bdcf8c22a8ddf453cf"

SRC_URI[sha256sum] = "25a0a47d157e8f158d2da1110ea4786c0615518751e94f7b04976c977a8ff20d"

inherit pypi python_hatchling

# aiomqtt 2.5 needs paho-mqtt >= 2.1.
RDEPENDS:${PN} += "\
    python3-asyncio \
    python3-logging \
    python3-paho-mqtt (>= 2.1) \
"
