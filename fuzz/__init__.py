"""Fuzz targets and the input format and seed corpus they share with the tests."""
