"""The OpenAI-shaped HTTP API (``/v1/…``) and ``/healthz``: edges only, logic lives in services."""
