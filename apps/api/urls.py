"""Routes of the OpenAI-shaped API, mounted at ``/v1/``."""

from django.urls import path, re_path

from .views import catalogue, fallback, models, secrets

urlpatterns = [
    path("models", models.model_list, name="api-models"),
    path("models/<path:model_id>", models.model_retrieve, name="api-model"),
    path("realtime/client_secrets", secrets.client_secret_create, name="api-client-secrets"),
    path("realtime/sessions", secrets.session_create, name="api-sessions"),
    path("realtime/voices", catalogue.voice_list, name="api-voices"),
    path("realtime/voiceList", catalogue.voice_list_xstar, name="api-voicelist"),
    path("realtime/characters", catalogue.character_list, name="api-characters"),
    re_path(r"^.*$", fallback.not_found),
]
