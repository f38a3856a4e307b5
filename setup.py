"""Build script: metadata lives in setup.cfg; this file will declare the C extensions."""

from setuptools import setup

setup()
