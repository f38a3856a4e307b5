"""tools/configgen: assets/config/default.toml and the README's settings table, from the
settings the components declare (see charger.runtime.settings)."""
