"""Django apps of the project, one per concern (see ARCHITECTURE in the README)."""
