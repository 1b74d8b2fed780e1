"""The OpenAI Realtime contract: wire protocol (GA and beta) and, later, the session engine."""
