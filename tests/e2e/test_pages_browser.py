"""An operator and an end user in a real browser."""

import json
import re
import urllib.request

import pytest

pytestmark = pytest.mark.browser


def test_home_page_shows_the_characters(server, browser) -> None:
    page = browser.new_page()
    page.goto(server["base"] + "/")
    assert page.locator("h1").inner_text() == "Talk to a digital human"
    slugs = page.locator("li.character").evaluate_all("els => els.map(e => e.dataset.slug)")
    assert set(slugs) >= {"girl2", "ava", "leo", "wang-laoshi", "qiqi"}
    # The stylesheet really loaded (whitenoise): the cards are laid out as a grid.
    assert page.locator("ul.characters").evaluate("e => getComputedStyle(e).display") == "grid"
    page.close()


def test_operator_creates_a_license_and_sees_its_key_once(server, browser) -> None:
    page = browser.new_page()
    page.goto(server["base"] + "/admin/login/?next=/admin/")
    page.fill("#id_username", server["user"])
    page.fill("#id_password", server["password"])
    page.click("input[type=submit]")
    page.wait_for_url(server["base"] + "/admin/")
    page.goto(server["base"] + "/admin/licensing/license/add/")
    page.fill("#id_name", "Browser-made")
    page.fill("#id_max_concurrent_sessions", "3")
    page.fill("#id_allowed_origins", "https://shop.example.com")
    page.click("input[name=_save]")
    key = page.locator("#license-key").input_value()
    assert re.fullmatch(r"lic_[0-9A-Za-z]{38}", key)
    # The key works against the API...
    request = urllib.request.Request(
        server["base"] + "/v1/realtime/voices", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        voices = [v["id"] for v in json.loads(response.read())["data"]]
    assert "alloy" in voices and "龙婉" in voices
    # ...and is never shown again.
    page.click("text=Continue to the license")
    assert key not in page.content()
    assert "Browser-made" in page.content()
    page.close()


def _login(page, server) -> None:
    page.goto(server["base"] + "/admin/login/?next=/admin/")
    page.fill("#id_username", server["user"])
    page.fill("#id_password", server["password"])
    page.click("input[type=submit]")
    page.wait_for_url(server["base"] + "/admin/")


def _preview_frames(page, count: int) -> list[str]:
    """Distinct preview frames the page shows over a few seconds (pixels read back)."""
    seen = []
    for _ in range(count):
        page.wait_for_timeout(250)
        seen.append(
            page.evaluate(
                """async () => {
                  const img = document.getElementById('avatar-preview');
                  // The page swaps frames continuously: read one right after it loaded.
                  await new Promise(r => img.addEventListener('load', r, {once: true}));
                  const c = document.createElement('canvas');
                  c.width = img.naturalWidth; c.height = img.naturalHeight;
                  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                  const d = g.getImageData(0, 0, c.width, c.height).data;
                  let h = 0; for (let i = 0; i < d.length; i += 97) h = (h * 31 + d[i]) >>> 0;
                  return img.naturalWidth + ':' + h;
                }"""
            )
        )
    return seen


def test_operator_uploads_a_portrait_and_watches_it_talk(server, browser, tmp_path) -> None:
    from pathlib import Path

    from PIL import Image

    photo = Path(__file__).resolve().parent.parent / "data" / "portrait-astronaut.jpg"
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (300, 360), (205, 180, 160)).save(blank)
    page = browser.new_page()
    _login(page, server)
    # A photo without a face: the form asks the operator to mark the eyes.
    page.goto(server["base"] + "/admin/avatar/character/add/")
    page.fill("#id_display_name", "Marked")
    page.fill("#id_slug", "marked")
    page.set_input_files("#id_portrait", str(blank))
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    assert "No face was found in this portrait" in page.content()
    page.set_input_files("#id_portrait", str(blank))
    page.fill("#id_left_eye_x", "120")
    page.fill("#id_left_eye_y", "150")
    page.fill("#id_right_eye_x", "180")
    page.fill("#id_right_eye_y", "150")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/admin/avatar/character/$"))
    # A real portrait: the face is found, and the change page previews it talking.
    page.goto(server["base"] + "/admin/avatar/character/add/")
    page.fill("#id_display_name", "Astro")
    page.fill("#id_slug", "astro")
    page.set_input_files("#id_portrait", str(photo))
    page.click("input[name=_continue]")
    page.wait_for_selector("#avatar-preview")
    assert "left_eye" in page.locator(".field-face_points").inner_text()
    frames = _preview_frames(page, 12)
    assert all(f.startswith("256:") for f in frames)
    assert len(set(frames)) >= 3, frames  # it moves: lips, blinks, head
    # Every character in the list has a preview, drawn and portrait alike.
    page.goto(server["base"] + "/admin/avatar/character/")
    sizes = page.locator("img[src*='preview.png']").evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.complete ? i.naturalWidth"
        " : new Promise(r => i.onload = () => r(i.naturalWidth))))"
    )
    assert len(sizes) >= 7 and all(s == 96 for s in sizes), sizes
    page.close()
