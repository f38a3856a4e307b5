"""Build script: metadata lives in setup.cfg; this file declares the C extension."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "charger.protocols.exi._exi",
            sources=["charger/protocols/exi/_exi.c"],
            depends=["charger/protocols/exi/_generated/_exi_tables.h"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra"],
        )
    ]
)
