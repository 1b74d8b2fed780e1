"""ASGI entry point: ``daphne realtime_site.asgi:application`` serves HTTP and WebSocket.

Defaults to the production settings (which refuse to start without SECRET_KEY and
ALLOWED_HOSTS); ``make run`` and ``manage.py`` pick the dev settings explicitly.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings.production")
# Set up Django (apps, models) before importing anything that touches them.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.core.body_limit import BodyLimit  # noqa: E402
from apps.core.gc_tuning import freeze_startup_objects  # noqa: E402
from apps.realtime.lifecycle import server_started  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

server_started()
freeze_startup_objects("startup")
if settings.VOICE_WARM_UP:
    # Models load in the background so the first conversation does not wait for them; what
    # they allocate is frozen too once they are in.
    import threading  # noqa: E402

    from apps.agent.routing import warm_up as warm_up_providers  # noqa: E402
    from apps.voice.engines import warm_up  # noqa: E402

    _loaders = [warm_up(), warm_up_providers()]

    def _freeze_after_warm_up() -> None:
        for loader in _loaders:
            loader.join()
        freeze_startup_objects("engines loaded")

    threading.Thread(target=_freeze_after_warm_up, name="gc-freeze", daemon=True).start()

application = ProtocolTypeRouter(
    {
        # Bodies are bounded before Django spools them to disk (it reads them whole first).
        "http": BodyLimit(django_asgi_app, limit_bytes=lambda: settings.HTTP_MAX_BODY_BYTES),
        # Origins are checked per credential at each consumer (browser credentials only), not
        # globally: server-side SDKs send no Origin header and must still connect.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
