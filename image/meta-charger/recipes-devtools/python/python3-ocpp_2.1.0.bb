SUMMARY = "OCPP (Open Charge Point Protocol) in Python: messages, routing, schemas"
DESCRIPTION = "The Mobility House's OCPP-J implementation for OCPP 1.6, 2.0.1 and 2.1, \
               with the official JSON schemas of every message."
HOMEPAGE = "https://github.com/mobilityhouse/ocpp"
BUGTRACKER = "https://github.com/mobilityhouse/ocpp/issues"
SECTION = "devel/python"
CVE_PRODUCT = "ocpp"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=357da596bd4bc9004894e2feaaa1e975"

SRC_URI[sha256sum] = "d29bfafb7161f75a78314f5cfd1b82fdf155082cd0f4de48c4dc8e5741422cf0"

inherit pypi python_poetry_core

# ocpp 2.1.0 asks for poetry-core >= 2 to build, scarthgap has 1.9: its pyproject.toml
# uses only [tool.poetry], which 1.9 builds the same way.
PEP517_BUILD_OPTS = "--skip-dependency-check"

RDEPENDS:${PN} += "\
    python3-asyncio \
    python3-json \
    python3-jsonschema \
"
