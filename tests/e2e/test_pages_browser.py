"""An operator and an end user in a real browser."""

import json
import re
import urllib.request

import pytest

pytestmark = pytest.mark.browser


def test_home_page_shows_the_characters(server, browser, shot) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server["base"] + "/")
    assert page.locator("h1").inner_text() == "Talk to a digital human"
    slugs = page.locator("li.character").evaluate_all("els => els.map(e => e.dataset.slug)")
    assert set(slugs) >= {"girl2", "ava", "leo", "wang-laoshi", "qiqi"}
    # The stylesheet really loaded (whitenoise): the cards are laid out as a grid.
    assert page.locator("ul.character-grid").evaluate("e => getComputedStyle(e).display") == "grid"
    # Every card's still loaded and is a picture of the character.
    sizes = page.locator("li.character img.still").evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.complete ? i.naturalWidth"
        " : new Promise(r => { i.onload = () => r(i.naturalWidth); i.onerror = () => r(0); })))"
    )
    assert len(sizes) == len(slugs) and all(s == 192 for s in sizes), sizes
    shot(page, "home")
    # The form is usable from the keyboard: pick a character with the arrow keys, submit.
    page.focus("#character-" + slugs[0])
    page.keyboard.press("ArrowRight")
    page.select_option("#transport", "websocket")
    page.click("label[for=mode-ptt]")
    page.click("text=Start talking")
    page.wait_for_url(f"**/talk/{slugs[1]}/?transport=websocket&mode=ptt")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server["base"] + "/")
    # Phone width: two cards a row, nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "home-phone")
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


SAY = """
async ({ text, reply }) => {
  const mint = await fetch("/talk/secret", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ character: "ava" }),
  });
  const secret = await mint.json();
  const url = location.origin.replace("http", "ws") + "/v1/realtime?characterName=ava";
  const ws = new WebSocket(url, ["realtime", "openai-insecure-api-key." + secret.value]);
  const seen = [];
  await new Promise((done, fail) => {
    ws.onerror = fail;
    ws.onmessage = (e) => {
      const event = JSON.parse(e.data);
      seen.push(event.type);
      if (event.type === "session.created") {
        for (const [role, type, said] of [["user", "input_text", text], ["assistant", "output_text", reply]]) {
          ws.send(JSON.stringify({ type: "conversation.item.create",
            item: { type: "message", role, content: [{ type, text: said }] } }));
        }
      }
      if (seen.filter((t) => t === "conversation.item.done").length >= 2) {
        ws.close(); done();
      }
    };
  });
  return { user: secret.user_id, seen };
}
"""


def test_a_visitor_reads_their_history(server, browser, shot) -> None:
    """A conversation held in this browser is listed, and its transcript loads in place (HTMX)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server["base"] + "/history/")
    assert "Nothing here yet" in page.content()
    said = page.evaluate(SAY, {"text": "What is the capital of France?", "reply": "Paris."})
    assert said["user"].startswith("v_"), said
    # Items are saved by the session's store a moment after their events: look until listed.
    for _ in range(50):
        page.goto(server["base"] + "/history/")
        if page.locator(".history-list a").count():
            break
        page.wait_for_timeout(200)
    entry = page.locator(".history-list a").first
    assert "What is the capital of France?" in entry.inner_text()
    entry.click()
    page.wait_for_selector("#transcript-pane .transcript-view")
    turns = page.locator("#transcript-pane .turn").all_inner_texts()
    assert "What is the capital of France?" in turns[0] and "Paris." in turns[1], turns
    # HTMX swapped the pane in place and pushed the conversation's own URL.
    assert "/history/sess_" in page.url and page.locator("h1").inner_text() == "Your conversations"
    shot(page, "history")
    # Another browser (another visitor) sees none of it, not even by the URL.
    stranger = browser.new_context().new_page()
    stranger.goto(server["base"] + "/history/")
    assert "Nothing here yet" in stranger.content()
    assert stranger.goto(page.url).status == 404
    stranger.context.close()
    context.close()


@pytest.mark.timeout(420)
def test_an_operator_adds_a_portrait_character_and_a_user_talks_to_it(
    server, browser, launch, speech, shot
) -> None:
    """Admin: upload a photo (its face is found). Talk page: a spoken question, a spoken answer."""
    from pathlib import Path

    from tests.e2e import media

    photo = Path(__file__).resolve().parent.parent / "data" / "portrait-astronaut.jpg"
    operator = browser.new_page()
    _login(operator, server)
    operator.goto(server["base"] + "/admin/avatar/character/add/")
    operator.fill("#id_display_name", "Eileen")
    # The admin fills the slug from the name as the operator types it.
    operator.locator("#id_display_name").dispatch_event("keyup")
    assert operator.input_value("#id_slug") == "eileen"
    operator.fill("#id_description", "An astronaut who answers in a sentence or two.")
    operator.set_input_files("#id_portrait", str(photo))
    marin = operator.locator("#id_default_voice option", has_text="Marin").get_attribute("value")
    operator.select_option("#id_default_voice", value=marin)
    operator.click("input[name=_save]")
    operator.wait_for_url(re.compile(r".*/admin/avatar/character/$"))
    operator.close()

    # The new character is on the home page; a user talks to it over WebRTC.
    question = "What is the capital of France?"
    user_browser = launch(speech(question, "en", lead_s=6.0, tail_s=40.0))
    page = user_browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    media.install(page)
    page.goto(server["base"] + "/")
    card = page.locator("li.character[data-slug=eileen]")
    assert "Eileen" in card.inner_text() and "Portrait" in card.inner_text()
    card.locator("a.quick").click()
    page.wait_for_url("**/talk/eileen/")
    page.wait_for_function("window.talk !== undefined")
    media.connect(page)
    media.start_trace(page)
    user = media.wait_entry(page, "user", timeout_s=150)
    assert media.similarity(user["text"], question) >= 0.5, user
    reply = media.wait_entry(page, "assistant", timeout_s=150)
    assert reply["text"], reply
    media.wait_quiet(page, 2.5)
    samples = media.trace(page)
    figures = media.av_figures(samples, media.now_ms(page) - 2000)
    print(f"\nportrait turn: {user['text']!r} -> {reply['text']!r}: {figures}")
    shot(page, "talk-portrait")
    # The photo talks: the reply is heard, the video plays, the mouth moves while it speaks.
    media.check_av(samples, figures)
    page.click("#talk-hangup")
    page.context.close()
