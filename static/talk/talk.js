// The talk page: wires the page's controls to a TalkSession and renders what it reports.
// Reads its settings from the json_script "talk-config" (see templates/web/talk.html).

import { TalkSession } from "./session.js";
import { Transcript } from "./transcript.js";

const config = JSON.parse(document.getElementById("talk-config").textContent);
const $ = (id) => document.getElementById(id);

const root = $("talk");
const ui = {
  video: $("talk-video"),
  audio: $("talk-audio"),
  connect: $("talk-connect"),
  hangup: $("talk-hangup"),
  mute: $("talk-mute"),
  ptt: $("talk-ptt"),
  pttHint: $("talk-ptt-hint"),
  meter: $("talk-meter"),
  status: $("talk-status"),
  latency: $("talk-latency"),
  notice: $("talk-notice"),
  activity: $("talk-activity"),
  alert: $("talk-alert"),
  alertTitle: $("talk-alert-title"),
  alertText: $("talk-alert-text"),
  alertDetail: $("talk-alert-detail"),
  retry: $("talk-retry"),
  keyForm: $("talk-key-form"),
  key: $("talk-key"),
  ownKeyForm: $("talk-own-key-form"),
  ownKey: $("talk-own-key"),
  ownKeyState: $("talk-own-key-state"),
  transportHint: $("talk-transport-hint"),
  voice: $("talk-voice"),
  language: $("talk-language"),
  transcript: $("talk-transcript"),
  empty: $("talk-empty"),
  composer: $("talk-composer"),
  text: $("talk-text"),
  send: $("talk-send"),
};
const name = config.character.name;

const transcript = new Transcript(ui.transcript, {
  assistantName: name,
  onChange: () => {
    ui.empty.hidden = transcript.order.length > 0;
  },
});
const session = new TalkSession({ config, videoEl: ui.video, audioEl: ui.audio, transcript });

// --- settings ---------------------------------------------------------------------------------

for (const voice of config.voices || []) {
  const option = new Option(voice.name, voice.id, false, voice.id === config.voice);
  if (voice.language) option.lang = voice.language;
  ui.voice.append(option);
}
if (config.voice && ![...ui.voice.options].some((o) => o.value === config.voice)) {
  ui.voice.append(new Option(config.voice, config.voice, true, true));
}
ui.language.value = ["en", "zh"].includes(config.language) ? config.language : "auto";

// --- rendering ------------------------------------------------------------------------------

const ACTIVITY = {
  idle: "Ready",
  listening: "Listening",
  thinking: "Thinking",
  speaking: "Speaking",
};

function statusText() {
  if (session.state === "connecting") return session.step || "Connecting…";
  if (session.state === "error") return `Not connected: ${session.error.title}.`;
  if (session.state !== "connected") {
    return session.connects > 0
      ? "Call ended. Press Connect to talk again; your conversation stays below."
      : "Not connected. Press Connect and allow the microphone.";
  }
  const interrupt = session.muted
    ? "your microphone is muted"
    : session.mode === "ptt"
      ? "hold Talk to interrupt"
      : "talk to interrupt";
  switch (session.activity) {
    case "listening":
      return "Listening…";
    case "thinking":
      return `${name} is thinking…`;
    case "speaking":
      return `${name} is speaking (${interrupt}).`;
    default:
      if (session.muted) return "Connected. Your microphone is muted.";
      return session.mode === "ptt"
        ? "Connected. Hold Talk (or the Space bar) while you speak."
        : "Connected. Just start talking.";
  }
}

function latencyText() {
  const timed = session.turns.filter((t) => t.latencyMs !== null);
  if (!timed.length) return "Reply time: no replies yet";
  const last = timed[timed.length - 1].latencyMs / 1000;
  if (timed.length === 1) return `Reply time: ${last.toFixed(2)} s`;
  const mean = timed.reduce((sum, t) => sum + t.latencyMs, 0) / timed.length / 1000;
  return `Reply time: ${last.toFixed(2)} s (average ${mean.toFixed(2)} s over ${timed.length} replies)`;
}

let lastStatus = "";
function render() {
  const { state } = session;
  const connected = state === "connected";
  const busy = state === "connecting";
  root.dataset.state = state;
  root.dataset.activity = connected ? session.activity : "offline";
  root.dataset.mode = session.mode;
  root.dataset.transport = session.transportKind;

  ui.connect.hidden = connected || state === "error"; // the alert's own button says what to do
  ui.connect.disabled = busy;
  ui.connect.textContent = busy ? "Connecting…" : session.connects > 0 ? "Connect again" : "Connect";
  ui.hangup.hidden = !connected && !busy;
  ui.hangup.textContent = busy ? "Cancel" : "Hang up";
  ui.mute.disabled = false; // muting before connecting joins muted
  ui.mute.setAttribute("aria-pressed", String(session.muted));
  ui.mute.querySelector(".btn__label").textContent = session.muted ? "Unmute" : "Mute";

  const ptt = session.mode === "ptt";
  ui.ptt.hidden = !ptt;
  ui.pttHint.hidden = !ptt;
  ui.ptt.disabled = !connected || session.muted;
  ui.ptt.classList.toggle("is-held", session.pttHeld);
  ui.ptt.textContent = session.pttHeld ? "Listening… release to send" : "Hold to talk";
  for (const input of document.querySelectorAll('input[name="mode"]')) input.checked = input.value === session.mode;
  for (const input of document.querySelectorAll('input[name="transport"]')) {
    input.checked = input.value === session.transportKind;
    input.disabled = connected || busy;
  }
  ui.transportHint.hidden = !(connected || busy);

  const status = statusText();
  if (status !== lastStatus) {
    ui.status.textContent = status;
    lastStatus = status;
  }
  ui.latency.textContent = latencyText();
  const chip = connected ? ACTIVITY[session.activity] : busy ? "Connecting" : "Offline";
  ui.activity.querySelector(".avatar__chip-text").textContent = session.muted && connected && session.activity === "idle" ? "Muted" : chip;

  ui.text.disabled = !connected;
  ui.send.disabled = !connected;

  const error = state === "error" ? session.error : null;
  ui.alert.hidden = !error;
  if (error) {
    ui.alertTitle.textContent = error.title;
    ui.alertText.textContent = error.text;
    ui.alertDetail.textContent = error.detail ? `Details: ${error.detail}` : "";
    ui.alertDetail.hidden = !error.detail;
    const wantsKey = error.action === "key" || (session.licenseKey && (error.code === "bad_key" || error.code === "expired_key"));
    ui.keyForm.hidden = !wantsKey;
    ui.retry.hidden = error.action === "key" && !session.licenseKey;
    ui.retry.textContent =
      error.action === "reconnect" ? "Reconnect" : error.action === "key" ? "Connect" : "Retry";
  }
  ui.ownKeyState.textContent = session.licenseKey
    ? "Your key is in use (kept in this tab's memory only)."
    : session.needKey
      ? "This site needs a license key to talk."
      : "The site's own access is used.";
}

function renderLevels() {
  const level = Math.min(1, session.micLevel * 6);
  ui.meter.style.setProperty("--level", level.toFixed(3));
  const percent = Math.round(level * 100);
  if (ui.meter.getAttribute("aria-valuenow") !== String(percent)) {
    ui.meter.setAttribute("aria-valuenow", String(percent));
    ui.meter.setAttribute(
      "aria-valuetext",
      !session.connected ? "off" : session.muted ? "muted" : percent > 15 ? "hearing you" : "quiet",
    );
  }
  root.style.setProperty("--speaking", Math.min(1, session.outLevel * 8).toFixed(3));
}

let noticeTimer = null;
function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    ui.notice.hidden = true;
  }, 6000);
}

session.addEventListener("change", render);
session.addEventListener("levels", renderLevels);
session.addEventListener("notice", (event) => showNotice(event.detail));

// --- controls -------------------------------------------------------------------------------

function focusAfter(action) {
  // Keep keyboard users where they were when the button they used disappears.
  return async () => {
    await action();
    if (session.connected) ui.hangup.focus();
    else if (session.state === "error") (ui.keyForm.hidden ? ui.retry : ui.key).focus();
    else ui.connect.focus();
  };
}

ui.connect.addEventListener("click", focusAfter(() => session.connect()));
ui.retry.addEventListener("click", focusAfter(() => session.connect()));
ui.hangup.addEventListener("click", focusAfter(() => session.hangup()));
ui.mute.addEventListener("click", () => session.setMuted(!session.muted));

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  session.useLicenseKey(ui.key.value);
  ui.key.value = ""; // not left in the page
  focusAfter(() => session.connect())();
});
ui.ownKeyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  session.useLicenseKey(ui.ownKey.value);
  ui.ownKey.value = "";
});

for (const input of document.querySelectorAll('input[name="mode"]')) {
  input.addEventListener("change", () => session.setMode(input.value));
}
for (const input of document.querySelectorAll('input[name="transport"]')) {
  input.addEventListener("change", () => session.setTransport(input.value));
}
ui.voice.addEventListener("change", () => session.setVoice(ui.voice.value));
ui.language.addEventListener("change", () => session.setLanguage(ui.language.value));

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (!text.trim()) return;
  ui.text.value = "";
  session.sendText(text);
});

// Push-to-talk: the button (pointer, or Space/Enter on it) and the Space bar anywhere but in a
// text field.
ui.ptt.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  ui.ptt.setPointerCapture(event.pointerId);
  session.pttDown();
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  ui.ptt.addEventListener(type, () => session.pttUp());
}
ui.ptt.addEventListener("contextmenu", (event) => event.preventDefault());

function typing(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !["radio", "checkbox", "button", "submit"].includes(target.type);
}

function pttKey(event) {
  if (session.mode !== "ptt" || !session.connected) return false;
  if (event.code === "Space") return !typing(event.target);
  return event.key === "Enter" && event.target === ui.ptt;
}

document.addEventListener("keydown", (event) => {
  if (!pttKey(event)) return;
  event.preventDefault(); // no scrolling, no click on the focused button
  if (!event.repeat) session.pttDown();
});
document.addEventListener("keyup", (event) => {
  if (!pttKey(event)) return;
  event.preventDefault();
  session.pttUp();
});
// Letting go is missed when the window loses focus mid-press: treat it as a release.
window.addEventListener("blur", () => session.pttUp());
window.addEventListener("pagehide", () => {
  if (session.connected) session.hangup();
});

// --- the test hook (read-only; the page never uses it) ----------------------------------------

const hook = {
  get state() {
    return session.state;
  },
  get connected() {
    return session.connected;
  },
  get transport() {
    return session.transportKind;
  },
  get mode() {
    return session.mode;
  },
  get muted() {
    return session.muted;
  },
  get activity() {
    return session.activity;
  },
  get sessionId() {
    return session.sessionId;
  },
  get userId() {
    return session.userId;
  },
  get connects() {
    return session.connects;
  },
  get videoPlaying() {
    return session.videoPlaying;
  },
  get turns() {
    return session.turns.map((t) => ({
      n: t.n,
      userItemId: t.userItemId,
      assistantItemId: t.assistantItemId,
      responseId: t.responseId,
      latencyMs: t.latencyMs,
      interrupted: t.interrupted,
    }));
  },
  get transcript() {
    return transcript.snapshot();
  },
  get lastError() {
    const e = session.error;
    return e ? { code: e.code, serverCode: e.serverCode, title: e.title, action: e.action } : null;
  },
  get lastErrorCode() {
    return session.lastErrorCode;
  },
};
Object.defineProperty(window, "talk", { value: Object.freeze(hook), enumerable: true });

if (!config.hasTalkLicense) session.askForKey();
render();
renderLevels();
