"""Management commands of the avatar app."""
