"""Build script: metadata lives in setup.cfg; this file declares the C extensions."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "charger.protocols.exi._exi",
            sources=["charger/protocols/exi/_exi.c"],
            depends=["charger/protocols/exi/_generated/_exi_tables.h"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "charger.hal.rpi._cpsample",
            sources=["charger/hal/rpi/_cpsample.c"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra"],
        ),
    ]
)
