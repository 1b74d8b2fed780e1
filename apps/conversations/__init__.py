"""Conversations, their items (transcripts) and per-user memory facts."""
