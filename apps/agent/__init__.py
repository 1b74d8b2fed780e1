"""The brain: LLM providers chosen in settings and model routing (``modelId@provider``)."""
