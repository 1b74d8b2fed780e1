"""WebRTC transport: calls (SDP over HTTP), their media and ``oai-events``, signaling."""

from django.apps import AppConfig


class RtcConfig(AppConfig):
    """The ``rtc`` app."""

    name = "apps.rtc"
    label = "rtc"
    default_auto_field = "django.db.models.BigAutoField"
