"""The character admin: portraits find their face or ask for marks; every character previews."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from apps.avatar.models import Character

pytestmark = pytest.mark.django_db

PHOTO = Path(__file__).resolve().parent.parent / "data" / "portrait-astronaut.jpg"
ADD = "/admin/avatar/character/add/"


def _form(**fields: object) -> dict[str, object]:
    return {
        "slug": "astro",
        "display_name": "Astro",
        "description": "",
        "persona": "",
        "look": "{}",
        "active": "on",
        **fields,
    }


def _upload(data: bytes, name: str = "face.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _blank_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 360), (205, 180, 160)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_an_uploaded_portrait_finds_its_face(admin_client: Client) -> None:
    response = admin_client.post(ADD, _form(portrait=_upload(PHOTO.read_bytes())))
    assert response.status_code == 302, response.content.decode()[:2000]
    character = Character.objects.get(slug="astro")
    assert set(character.face_points) == {"left_eye", "right_eye", "mouth", "mouth_width"}
    assert 120 < character.face_points["left_eye"][0] < 145


def test_a_portrait_without_a_face_asks_the_operator_to_mark_it(admin_client: Client) -> None:
    response = admin_client.post(ADD, _form(portrait=_upload(_blank_jpeg())))
    assert response.status_code == 200
    assert "No face was found in this portrait" in response.content.decode()
    assert not Character.objects.filter(slug="astro").exists()
    marked = _form(
        portrait=_upload(_blank_jpeg()),
        left_eye_x="120",
        left_eye_y="150",
        right_eye_x="180",
        right_eye_y="150",
    )
    assert admin_client.post(ADD, marked).status_code == 302
    points = Character.objects.get(slug="astro").face_points
    assert points["left_eye"] == [120.0, 150.0] and points["mouth"] == [150.0, 210.0]


def test_half_marked_eyes_are_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD, _form(portrait=_upload(_blank_jpeg()), left_eye_x="120"))
    assert "Mark both eyes" in response.content.decode()


def test_every_character_has_a_live_preview(admin_client: Client) -> None:
    drawn = Character.objects.create(slug="leo", display_name="Leo", look={"accessory": "glasses"})
    admin_client.post(ADD, _form(portrait=_upload(PHOTO.read_bytes())))
    portrait = Character.objects.get(slug="astro")
    listing = admin_client.get("/admin/avatar/character/").content.decode()
    assert f"/admin/avatar/character/{drawn.pk}/preview.png" in listing
    assert "portrait" in listing and "drawn" in listing
    page = admin_client.get(f"/admin/avatar/character/{portrait.pk}/change/").content.decode()
    assert 'id="avatar-preview"' in page and "avatar/preview.js" in page
    for character in (drawn, portrait):
        url = f"/admin/avatar/character/{character.pk}/preview.png"
        frames = []
        for t_ms in (0, 1000, 1300):
            response = admin_client.get(url, {"t": t_ms, "size": 128})
            assert response.status_code == 200 and response["Content-Type"] == "image/png"
            frames.append(np.asarray(Image.open(io.BytesIO(response.content)), dtype=np.int16))
        assert frames[0].shape == (128, 128, 3)
        # Silent at 0 ms, talking during the demo line: the frames differ.
        assert (
            np.abs(frames[1] - frames[0]).mean() > 0.2 or np.abs(frames[2] - frames[0]).mean() > 0.2
        )
    assert (
        admin_client.get(f"/admin/avatar/character/{drawn.pk}/preview.png", {"t": "x"}).status_code
        == 400
    )


def test_the_preview_is_for_staff_only(client: Client) -> None:
    character = Character.objects.create(slug="leo", display_name="Leo")
    response = client.get(f"/admin/avatar/character/{character.pk}/preview.png")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_portrait_whose_file_is_gone_is_drawn_instead(admin_client: Client) -> None:
    from apps.avatar.services import character_spec

    admin_client.post(ADD, _form(portrait=_upload(PHOTO.read_bytes())))
    character = Character.objects.get(slug="astro")
    assert character_spec(character).kind == "portrait"
    Path(character.portrait.path).unlink()
    assert character_spec(character).kind == "drawn"
    response = admin_client.get(f"/admin/avatar/character/{character.pk}/preview.png")
    assert response.status_code == 200
