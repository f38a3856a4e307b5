"""Shared runtime facilities every layer may use: logging, task ownership and
supervision, the durable SQLite/CBOR store, and the package's data files. It imports
nothing else of the charger."""
