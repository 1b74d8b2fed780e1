"""Avatar renderers: the interface, the default CPU renderer and the one chosen in settings."""
