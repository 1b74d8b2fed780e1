"""Routes of the end-user pages."""

from django.urls import path

from . import views

urlpatterns = [path("", views.index, name="web-index")]
