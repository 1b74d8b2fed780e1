"""Django project package: settings, ASGI application, URL and WebSocket routes."""
