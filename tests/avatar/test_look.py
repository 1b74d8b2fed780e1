import pytest
from django.core.exceptions import ValidationError

from apps.avatar.look import DEFAULT_LOOK, full_look, look_errors
from apps.avatar.models import Character
from apps.voice.models import Voice


def test_valid_look() -> None:
    assert look_errors({"skin": "#AABBCC", "hair_style": "bun", "accessory": "glasses"}) == []
    assert full_look({"hair": "#000000"}) == {**DEFAULT_LOOK, "hair": "#000000"}


@pytest.mark.parametrize(
    ("look", "fragment"),
    [
        ({"skin": "red"}, "skin"),
        ({"hair_style": "mohawk"}, "hair_style"),
        ({"wings": True}, "unknown look parameter"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_looks(look, fragment) -> None:
    errors = look_errors(look)
    assert errors and fragment in errors[0]


@pytest.mark.django_db
def test_character_clean_checks_look_and_voice(issued) -> None:
    with pytest.raises(ValidationError) as info:
        Character(slug="c", display_name="C", look={"skin": "pink"}).full_clean()
    assert "look" in info.value.message_dict
    clone = Voice.objects.create(
        slug="clone",
        display_name="c",
        languages=["zh"],
        engine="f",
        engine_voice="c",
        builtin=False,
        owner_license=issued.license,
    )
    with pytest.raises(ValidationError) as info:
        Character(slug="c", display_name="C", default_voice=clone).full_clean()
    assert "default_voice" in info.value.message_dict
