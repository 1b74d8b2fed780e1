"""Chromium calls the server the way OpenAI's WebRTC quickstart does.

Real browser, real server (embedded engines: Piper speaks): the page takes the (fake)
microphone, adds a ``recvonly`` video transceiver and the ``oai-events`` channel, posts its
offer (with its candidates) with an ephemeral secret, and plays what comes back. The reply is asked for with ``tts_text`` so no model is
involved. Checks what only a browser can: its SDP is accepted, the bearer-authenticated POST
passes (no CSRF), the events arrive over the data channel, the Opus track plays, and the
VP8 video (encoded by the server itself) decodes, plays at 512×512 and moves its mouth while
the avatar speaks.
"""

from __future__ import annotations

import json
import statistics
import urllib.request

import pytest

pytestmark = pytest.mark.browser

CALL = """
async ({ key }) => {
  const pc = new RTCPeerConnection();
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  pc.addTrack(mic.getTracks()[0], mic);
  pc.addTransceiver("video", { direction: "recvonly" });
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  const audio = document.createElement("audio");
  audio.autoplay = true;
  document.body.appendChild(audio);
  pc.ontrack = (e) => {
    const target = e.track.kind === "video" ? video : audio;
    target.srcObject = new MediaStream([e.track]);
  };
  const dc = pc.createDataChannel("oai-events");
  window.events = [];
  dc.onmessage = (e) => window.events.push(JSON.parse(e.data));
  window.dc = dc; window.pc = pc; window.video = video;
  await pc.setLocalDescription(await pc.createOffer());
  // Gathering is awaited (at most 5 s) so the offer carries the browser's candidates; the
  // aiortc tests cover offers posted before gathering (the server then learns the browser
  // from its checks).
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    });
    setTimeout(done, 5000);
  });
  const r = await fetch("/v1/realtime/calls", {
    method: "POST",
    body: pc.localDescription.sdp,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/sdp" },
  });
  const answer = await r.text();
  if (r.status !== 201) return { status: r.status, body: answer };
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  return { status: r.status, location: r.headers.get("Location") };
}
"""

# The mean luma change of the lower middle of the picture (where the mouth is) between two
# frames read 80 ms apart, sampled every 100 ms for `ms` milliseconds.
MOUTH_MOTION = """
async (ms) => {
  const v = window.video, c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d", { willReadFrequently: true });
  const box = [Math.round(c.width * 0.35), Math.round(c.height * 0.55),
               Math.round(c.width * 0.3), Math.round(c.height * 0.2)];
  const grab = () => { g.drawImage(v, 0, 0); return g.getImageData(...box).data; };
  const sleep = (t) => new Promise((f) => setTimeout(f, t));
  const changes = [];
  for (let t = 0; t < ms; t += 100) {
    const a = grab(); await sleep(80); const b = grab();
    let sum = 0;
    for (let i = 0; i < a.length; i += 4) sum += Math.abs(a[i] - b[i]);
    changes.push(sum / (a.length / 4));
    await sleep(20);
  }
  return changes;
}
"""


@pytest.fixture()
def media_browser(launch) -> object:  # type: ignore[no-untyped-def]
    """Chromium with a fake microphone (a beep) that needs no permission prompt."""
    return launch()


def _ephemeral_key(server: dict[str, str]) -> str:
    body = json.dumps({"session": {"type": "realtime"}}).encode()
    request = urllib.request.Request(
        server["base"] + "/v1/realtime/client_secrets",
        data=body,
        headers={
            "Authorization": f"Bearer {server['demo_key']}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["value"])


def _wait_event(page, kind: str, timeout_ms: int = 60_000) -> dict:  # type: ignore[no-untyped-def]
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "(kind) => window.events.some((e) => e.type === kind)", arg=kind, timeout=timeout_ms
        )
    except PlaywrightTimeout:
        state = page.evaluate(
            """[window.pc.connectionState, window.pc.iceConnectionState, window.dc.readyState,
                window.pc.iceGatheringState,
                (window.pc.localDescription.sdp.match(/a=candidate.*/g) || []),
                (window.pc.remoteDescription.sdp.match(/a=candidate.*/g) || []),
                window.events.map((e) => e.type)]"""
        )
        raise AssertionError(
            f"no {kind}: peer, ICE, channel, gathering, local and remote candidates, "
            f"events = {state}"
        ) from None
    return page.evaluate("(kind) => window.events.find((e) => e.type === kind)", kind)


def test_chromium_calls_with_the_openai_quickstart_flow(server, media_browser) -> None:
    page = media_browser.new_page()
    page.goto(server["base"] + "/healthz")  # a page of this origin (the secret's rules)
    result = page.evaluate(CALL, {"key": _ephemeral_key(server)})
    assert result["status"] == 201, result
    assert result["location"].startswith("/v1/realtime/calls/rtc_")
    created = _wait_event(page, "session.created")
    assert created["session"]["id"].startswith("sess_")
    page.wait_for_function("window.pc.connectionState === 'connected'", timeout=15_000)
    page.wait_for_function("window.video.videoWidth > 0", timeout=15_000)
    assert page.evaluate("[window.video.videoWidth, window.video.videoHeight]") == [512, 512]
    still = page.evaluate(MOUTH_MOTION, 1500)

    page.evaluate(
        """() => {
          window.dc.send(JSON.stringify({type: "conversation.item.create", item: {
            type: "message", role: "user",
            content: [{type: "tts_text", text: "Hello there! How are you doing today? " +
                       "I am glad to meet you, and I hope you enjoy our conversation."}]}}));
          window.dc.send(JSON.stringify({type: "response.create"}));
        }"""
    )
    _wait_event(page, "output_audio_buffer.started")
    speaking = page.evaluate(MOUTH_MOTION, 2500)
    _wait_event(page, "output_audio_buffer.stopped", timeout_ms=60_000)
    kinds = page.evaluate("window.events.map((e) => e.type)")
    assert kinds.index("response.done") < kinds.index("output_audio_buffer.stopped")
    # The reply played on the audio track: Chrome's receiver counted its samples.
    received = page.evaluate(
        """async () => {
          const stats = await window.pc.getStats();
          let audio = 0, frames = 0;
          stats.forEach((s) => {
            if (s.type === "inbound-rtp" && s.kind === "audio") audio = s.totalSamplesReceived;
            if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded;
          });
          return { audio, frames };
        }"""
    )
    assert received["audio"] > 48_000 and received["frames"] > 50
    # The mouth moved while the avatar spoke, far more than in the silence before (where a
    # breath or a blink may move a few pixels now and then).
    assert statistics.mean(speaking) > 3 * statistics.mean(still) + 0.5, (still, speaking)
    page.evaluate("window.pc.close()")
    page.close()
