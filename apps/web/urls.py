"""Routes of the end-user pages."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="web-index"),
    path("talk/", views.talk_start, name="web-talk-start"),
    path("talk/secret", views.talk_secret, name="web-talk-secret"),
    path("talk/<slug:slug>/", views.talk, name="web-talk"),
    path("history/", views.history, name="web-history"),
    path("history/<str:conversation_id>/", views.history_detail, name="web-history-detail"),
    path("demo/", views.demo, name="web-demo"),
    path("characters/<slug:slug>/still.png", views.character_still, name="web-character-still"),
]
