"""Settings modules: ``base`` (shared, env-driven), ``dev``, ``production`` and ``test``."""
