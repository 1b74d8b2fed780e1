"""App config for conversations."""

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    """Transcripts and user memory."""

    name = "apps.conversations"
    label = "conversations"
    verbose_name = "Conversations"
