"""Characters (the digital humans' looks and personas); the renderer comes with the avatar issue."""
