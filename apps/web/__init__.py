"""End-user pages (templates + HTMX + static JS) and the demo seed command."""
