"""``manage.py chat "prompt" [--model M]``: stream one reply from a configured model."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.agent.base import ChatMessage, ChatRequest, Finish, ProviderError, TextDelta, ToolCall
from apps.agent.routing import UnknownModel, providers, resolve_model


class Command(BaseCommand):
    """Ask a model one question and print the reply as it streams."""

    help = "Stream a reply to PROMPT from MODEL (modelId or modelId@provider; default: the first)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the options."""
        parser.add_argument("prompt")
        parser.add_argument("--model", default=None)
        parser.add_argument("--system", default=settings.REALTIME_DEFAULT_INSTRUCTIONS)
        parser.add_argument("--max-tokens", type=int, default=256)

    def handle(self, *args: Any, **options: Any) -> None:
        """Resolve the model, stream, print."""
        try:
            route = resolve_model(options["model"])
        except UnknownModel as exc:
            raise CommandError(exc.message) from None
        request = ChatRequest(
            model=route.model,
            messages=[
                ChatMessage("system", options["system"]),
                ChatMessage("user", options["prompt"]),
            ],
            max_tokens=options["max_tokens"],
        )
        try:
            asyncio.run(self._stream(providers()[route.provider], request))
        except ProviderError as exc:
            raise CommandError(str(exc)) from None

    async def _stream(self, provider: Any, request: ChatRequest) -> None:
        async for item in provider.stream(request):
            if isinstance(item, TextDelta):
                self.stdout.write(item.text, ending="")
                self.stdout.flush()
            elif isinstance(item, ToolCall):
                self.stdout.write(f"[tool call {item.name}({item.arguments})]", ending="")
            elif isinstance(item, Finish):
                self.stdout.write("")
                sys.stderr.write(f"({item.reason}, {item.completion_tokens} tokens)\n")
