"""LLM provider implementations."""
