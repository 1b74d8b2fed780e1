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
