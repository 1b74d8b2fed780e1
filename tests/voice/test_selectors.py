from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from apps.voice.models import OPENAI_VOICE_NAMES, Voice
from apps.voice.selectors import voice_get_visible

pytestmark = pytest.mark.django_db


def _voice(slug, **kw):
    return Voice.objects.create(
        slug=slug, display_name=slug, languages=["en"], engine="fake", engine_voice=slug, **kw
    )


def test_owned_voice_shadows_builtin_for_its_owner_only(issued, other_issued) -> None:
    builtin = _voice("alloy")
    team = _voice("alloy", builtin=False, owner_license=issued.license)
    mine = _voice("alloy", builtin=False, owner_license=issued.license, owner_user_id="u1")
    assert voice_get_visible(name="alloy", license_id=issued.license.pk, user_id="u1") == mine
    assert voice_get_visible(name="alloy", license_id=issued.license.pk, user_id="u2") == team
    assert voice_get_visible(name="alloy", license_id=other_issued.license.pk) == builtin
    assert voice_get_visible(name="ghost", license_id=issued.license.pk) is None


def test_builtin_slugs_are_unique() -> None:
    _voice("echo")
    with pytest.raises(IntegrityError):
        _voice("echo")


def test_ownership_must_be_consistent(issued) -> None:
    with pytest.raises(IntegrityError):
        _voice("x", builtin=False)
    voice = Voice(slug="y", display_name="y", languages="en", engine="f", engine_voice="y")
    with pytest.raises(ValidationError):
        voice.full_clean()


def test_seeded_catalogue_covers_every_openai_voice() -> None:
    from django.core.management import call_command

    call_command("seed_demo", stdout=StringIO())
    for name in OPENAI_VOICE_NAMES:
        assert Voice.objects.filter(slug=name, builtin=True, active=True).exists(), name
    chinese = [v.slug for v in Voice.objects.all() if "zh" in v.languages]
    assert "龙婉" in chinese and len(chinese) >= 4
