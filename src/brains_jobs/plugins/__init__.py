"""The plugin system: hook specifications and the host that loads plugins."""
