from io import StringIO

import pytest
from django.core.management import call_command

from apps.avatar.models import Character
from apps.licensing.models import License
from apps.licensing.services import AuthenticationFailed, credential_authenticate

pytestmark = pytest.mark.django_db


def test_home_page_lists_characters(client) -> None:
    call_command("seed_demo", stdout=StringIO())
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for slug in ("girl2", "ava", "leo", "wang-laoshi"):
        assert f'data-slug="{slug}"' in html
    assert "/static/css/site.css" in html


def test_home_page_without_characters_says_how_to_add_them(client) -> None:
    assert "seed_demo" in client.get("/").content.decode()


def test_admin_and_static_are_served(client) -> None:
    assert client.get("/admin/login/").status_code == 200
    assert client.get("/admin/").status_code == 302
    css = client.get("/static/css/site.css")
    assert css.status_code == 200
    assert b"--accent" in b"".join(css.streaming_content)


def test_seed_demo_is_idempotent_and_rotates_the_demo_key() -> None:
    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    key1, key2 = first.getvalue().split()[-1], second.getvalue().split()[-1]
    assert License.objects.filter(name="Demo").count() == 1
    assert Character.objects.count() == 5
    assert len({c.look["background"] for c in Character.objects.all()}) == 5
    with pytest.raises(AuthenticationFailed):
        credential_authenticate(key=key1)
    demo = credential_authenticate(key=key2).license
    assert demo.origin_allowed("http://127.0.0.1:8000")
