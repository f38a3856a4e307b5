SUMMARY = "A high-performance JSON Schema validator for Python (Rust, PyO3)"
DESCRIPTION = "Python bindings of the Rust jsonschema crate: JSON Schema drafts 4 to \
               2020-12 with format checks; the charger validates every bus message and \
               OCPP frame with it."
HOMEPAGE = "https://github.com/Stranger6667/jsonschema"
BUGTRACKER = "https://github.com/Stranger6667/jsonschema/issues"
SECTION = "devel/python"
CVE_PRODUCT = "jsonschema-rs"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://crates/jsonschema/LICENSE;md5=c37fead826b3004b3db6ad4a4a7a5cf4"

PYPI_PACKAGE = "jsonschema_rs"
SRC_URI[sha256sum] = "8ea236493450c013f095d5d4d9d3b8e56fa0153fb305107f9a7134ea16bcf56b"

# 0.61 needs Rust >= 1.85: scarthgap's own Rust is 1.75, so the kas files add
# meta-lts-mixins' scarthgap/rust layer. The crates come from the sdist's Cargo.lock;
# after a version change: bitbake -c update_crates python3-jsonschema-rs
inherit pypi python_maturin cargo-update-recipe-crates

require ${BPN}-crates.inc

RDEPENDS:${PN} += "python3-core"
