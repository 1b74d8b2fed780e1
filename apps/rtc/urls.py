"""HTTP routes of WebRTC calls (mounted before the rest of ``/v1/``)."""

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("v1/realtime/calls", views.calls_create, name="rtc-calls"),
    path("v1/realtime/calls/<str:call_id>/hangup", views.call_hangup_view, name="rtc-hangup"),
    re_path(r"^v1/realtime/?$", views.beta_sdp, name="rtc-beta-sdp"),
]
