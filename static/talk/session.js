// The talk page's conversation: gets a key, opens a transport, keeps the transcript and the
// per-turn latency, handles barge-in, push-to-talk, mute, errors and reconnecting.
// It knows nothing about the page's layout: talk.js renders what it reports.

import { LevelMeter } from "./audio.js";
import { FATAL_CODES, TalkError, micError, serverError } from "./errors.js";
import { WebRtcTransport } from "./webrtc.js";
import { WebSocketTransport } from "./websocket.js";

const VOICE_RMS = 0.02; // microphone RMS above this counts as the user speaking
const OUTPUT_RMS = 0.005; // reply RMS above this counts as audible
const TICK_MS = 50;
const PTT_TAIL_MS = 250; // keep sending this long after release: the last words are in flight
const PTT_MIN_MS = 300;
const SERVER_VAD_SILENCE_MS = 500; // server_vad's default silence_duration_ms
const SECRET_SECONDS = 60;
const WIRE_RATE = 24000;
const BUSY_RETRIES = 2;
const BUSY_RETRY_MS = 1500;
// Codes the page does not show: harmless outcomes of racing the server (a cancel after the
// response ended on its own, a truncate of audio that had all been played).
const QUIET_CODES = new Set(["response_cancel_not_active", "item_truncate_invalid_item_id"]);

/**
 * One conversation on the talk page.
 * Dispatches `change` whenever something the page shows changed, and `notice`
 * (detail: text) for a short, non-fatal message.
 */
export class TalkSession extends EventTarget {
  /**
   * @param {{config: object, videoEl: HTMLVideoElement, audioEl: HTMLAudioElement,
   *          transcript: import("./transcript.js").Transcript}} options
   */
  constructor({ config, videoEl, audioEl, transcript }) {
    super();
    this.config = config;
    this.videoEl = videoEl;
    this.audioEl = audioEl;
    this.transcript = transcript;
    this.transportKind = config.transport === "websocket" ? "websocket" : "webrtc";
    this.mode = config.mode === "ptt" ? "ptt" : "vad";
    this.voice = config.voice || "";
    this.language = config.language || "auto";
    this.state = "idle"; // idle | connecting | connected | error
    this.step = "";
    this.error = null;
    this.lastErrorCode = null;
    this.needKey = !config.hasTalkLicense;
    this.licenseKey = null; // memory only: never stored, only sent to mint a secret
    this.muted = false;
    this.pttHeld = false;
    this.pttReleasing = false;
    this.pttStart = 0;
    this.transport = null;
    this.ctx = null;
    this.mic = null;
    this.micMeter = null;
    this.outMeter = null;
    this.micLevel = 0;
    this.outLevel = 0;
    this.lastVoiceAt = -Infinity;
    this.ticker = null;
    this.sessionId = null;
    this.userId = config.userId;
    this.connects = 0;
    this.attempt = 0;
    this.videoPlaying = false;
    this.activity = "idle"; // idle | listening | thinking | speaking
    this.turns = [];
    this.responses = new Map(); // response id -> {items: Set, done, status}
    this.itemResponse = new Map(); // assistant item id -> response id
    this.hiddenItems = new Set(); // items not shown (tts_text instructions)
    this.interrupted = new Set();
    this.retrieving = new Set();
    this.speakingResponse = null;
    this.pendingFatal = null;
  }

  // --- state -------------------------------------------------------------------------------

  get connected() {
    return this.state === "connected";
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  notice(text) {
    this.dispatchEvent(new CustomEvent("notice", { detail: text }));
  }

  setActivity(activity) {
    if (this.activity !== activity) {
      this.activity = activity;
      this.changed();
    }
  }

  /** Choose the transport (before connecting). */
  setTransport(kind) {
    if (this.state === "connecting" || this.connected) return;
    this.transportKind = kind === "websocket" ? "websocket" : "webrtc";
    this.changed();
  }

  /** Choose the voice (applies at once when connected). */
  setVoice(voice) {
    this.voice = voice;
    if (this.connected) this.send({ type: "session.update", session: this.sessionConfig({ only: "voice" }) });
    this.changed();
  }

  /** Choose the transcription language: "en", "zh" or "auto" (applies at once when connected). */
  setLanguage(language) {
    this.language = language;
    if (this.connected) {
      this.send({ type: "session.update", session: this.sessionConfig({ only: "transcription" }) });
    }
    this.changed();
  }

  /**
   * Hands-free ("vad": the server detects turns) or push-to-talk ("ptt"); when connected, the
   * session's turn detection follows at once.
   */
  async setMode(mode) {
    this.mode = mode === "ptt" ? "ptt" : "vad";
    this.pttHeld = false;
    if (this.connected) {
      this.send({ type: "session.update", session: this.sessionConfig({ only: "turns" }) });
      if (this.mode === "ptt") this.send({ type: "input_audio_buffer.clear" });
      await this.transport.sendMic(this.micWanted());
    }
    this.changed();
  }

  /**
   * Mute or unmute the microphone (also before connecting). A muted microphone sends
   * silence, so the server's turn detection still sees a turn in progress end.
   */
  setMuted(muted) {
    this.muted = muted;
    this.applyMute();
    this.changed();
  }

  applyMute() {
    if (this.mic) for (const track of this.mic.getAudioTracks()) track.enabled = !this.muted;
  }

  /** Say up front that a license key is needed (the site has none for its talk page). */
  askForKey() {
    this.needKey = true;
    this.error = new TalkError("need_key");
    this.state = "error";
    this.changed();
  }

  /** Keep a license key in memory for minting secrets (never stored anywhere). */
  useLicenseKey(key) {
    this.licenseKey = key ? key.trim() : null;
    this.changed();
  }

  /** Whether the microphone goes to the server: always hands-free, while held push-to-talk. */
  micWanted() {
    return this.mode === "vad" || this.pttHeld;
  }

  // --- connecting --------------------------------------------------------------------------

  /**
   * Connect (or reconnect: the transcript stays, and the server reloads this user's history).
   */
  async connect() {
    if (this.state === "connecting" || this.connected) return;
    const reconnect = this.connects > 0;
    const attempt = ++this.attempt;
    const current = () => attempt === this.attempt; // false once hung up meanwhile
    this.state = "connecting";
    this.error = null;
    this.changed();
    let transport = null;
    try {
      this.step = "Starting audio…";
      this.changed();
      if (!this.ctx) this.ctx = new AudioContext();
      // Inside the click that started it, so browsers allow the sound.
      const resumed = this.ctx.resume();
      this.step = "Asking for the microphone…";
      this.changed();
      await this.microphone();
      await resumed;
      if (!current()) {
        if (this.state === "idle") this.stopMedia(); // the microphone came after the hang-up
        return;
      }
      this.step = "Getting a session key…";
      this.changed();
      const minted = await this.mint();
      if (!current()) return;
      this.step = reconnect ? "Reconnecting…" : "Connecting…";
      this.changed();
      for (let tries = 1; ; tries++) {
        transport = this.makeTransport(minted.user_id || this.userId);
        this.transport = transport;
        try {
          await transport.connect({ secret: minted.value, mic: this.mic, sendMic: this.micWanted() });
          break;
        } catch (error) {
          // A busy server says "try again shortly": do so a couple of times before asking
          // the user to (the secret is good for several connections until it expires).
          if (!(error instanceof TalkError) || error.code !== "busy" || tries > BUSY_RETRIES) throw error;
          transport.hangup();
          this.transport = null;
          if (!current()) return;
          this.step = "The server is busy; trying again…";
          this.changed();
          await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS * tries));
          if (!current()) return;
        }
      }
      if (!current()) {
        transport.hangup();
        return;
      }
      this.connects += 1;
      this.state = "connected";
      this.step = "";
      this.pendingFatal = null;
      this.send({ type: "session.update", session: this.sessionConfig() });
      this.changed();
    } catch (error) {
      if (!current()) return; // hung up while connecting: nothing to report
      this.fail(error instanceof TalkError ? error : new TalkError("server_error", String(error)));
    }
  }

  async microphone() {
    if (this.mic && this.mic.getAudioTracks().some((t) => t.readyState === "live")) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new TalkError("mic_missing", "this browser offers no microphone API here (is the page served over HTTPS?)");
    }
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      throw micError(error);
    }
    this.applyMute();
    this.micMeter = new LevelMeter(this.ctx, this.ctx.createMediaStreamSource(this.mic));
    this.startTicker();
  }

  /** Get an ephemeral secret: from the site, or minted with the visitor's license key. */
  async mint() {
    const urls = this.config.urls;
    if (this.licenseKey) {
      const response = await this.post(
        urls.clientSecrets,
        {
          expires_after: { anchor: "created_at", seconds: SECRET_SECONDS },
          session: this.sessionConfig(),
          user_id: this.config.userId,
        },
        { Authorization: `Bearer ${this.licenseKey}` },
      );
      return { ...response, user_id: this.config.userId };
    }
    if (this.needKey) throw new TalkError("need_key");
    try {
      return await this.post(urls.secret, {
        character: this.config.character.slug,
        voice: this.voice || null,
        language: this.language || null,
        mode: this.mode,
      });
    } catch (error) {
      if (error instanceof TalkError && error.code === "need_key") this.needKey = true;
      throw error;
    }
  }

  async post(url, body, headers = {}) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (error) {
      throw new TalkError("unreachable", String(error));
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok || !data || !data.value) {
      throw serverError(data && data.error, response.status || 500);
    }
    return data;
  }

  makeTransport(userId) {
    const common = { urls: this.config.urls, slug: this.config.character.slug, videoEl: this.videoEl };
    const transport =
      this.transportKind === "websocket"
        ? new WebSocketTransport({ ...common, userId, ctx: this.ctx })
        : new WebRtcTransport({ ...common, audioEl: this.audioEl });
    transport.addEventListener("server-event", (e) => this.onServerEvent(transport, e.detail));
    transport.addEventListener("lost", (e) => this.onLost(transport, e.detail));
    transport.addEventListener("video", () => {
      this.videoPlaying = true;
      this.changed();
    });
    transport.addEventListener("started", (e) => this.onPlayback("started", e.detail));
    transport.addEventListener("played", (e) => this.onPlayback("played", e.detail));
    transport.addEventListener("idle", (e) => this.onPlayback("idle", e.detail));
    this.outMeter = null;
    return transport;
  }

  /**
   * The session config this page wants (for session.update and minting).
   * @param {{only?: "voice"|"transcription"|"turns"}} [options] just one part of it
   */
  sessionConfig({ only } = {}) {
    const transcription = { model: "whisper-1" };
    if (this.language === "en" || this.language === "zh") transcription.language = this.language;
    const input = {};
    if (!only || only === "transcription") input.transcription = transcription;
    if (!only || only === "turns") input.turn_detection = this.mode === "vad" ? { type: "server_vad" } : null;
    const audio = {};
    if (Object.keys(input).length) audio.input = input;
    if ((!only || only === "voice") && this.voice) audio.output = { voice: this.voice };
    if (!only && this.transportKind === "websocket") {
      // The page's worklets speak 24 kHz PCM16 both ways.
      audio.input.format = { type: "audio/pcm", rate: WIRE_RATE };
      audio.output = { ...(audio.output || {}), format: { type: "audio/pcm", rate: WIRE_RATE } };
    }
    return { type: "realtime", audio };
  }

  send(event) {
    return Boolean(this.transport && this.transport.send(event));
  }

  // --- ending ------------------------------------------------------------------------------

  /** Hang up. The transcript stays on the page. */
  async hangup() {
    this.attempt += 1; // a connect still in progress stops where it is
    const transport = this.transport;
    this.transport = null;
    this.pttHeld = false;
    if (transport) await transport.hangup();
    this.stopMedia();
    this.transcript.settle();
    this.state = "idle";
    this.step = "";
    this.setActivity("idle");
    this.changed();
  }

  fail(error) {
    const transport = this.transport;
    this.transport = null;
    if (transport) transport.hangup();
    this.stopMedia();
    this.transcript.settle();
    this.error = error;
    this.lastErrorCode = error.serverCode || error.code;
    this.state = "error";
    this.step = "";
    this.activity = "idle";
    this.changed();
  }

  stopMedia() {
    this.pttHeld = false;
    this.videoPlaying = false;
    this.speakingResponse = null;
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
    this.mic = null;
    this.micMeter = null;
    this.outMeter = null;
    this.micLevel = 0;
    this.outLevel = 0;
    clearInterval(this.ticker);
    this.ticker = null;
    this.videoEl.srcObject = null;
    this.audioEl.srcObject = null;
    // Show the still image again (srcObject = null alone leaves the last frame in some browsers).
    this.videoEl.load();
  }

  onLost(transport, detail) {
    if (transport !== this.transport || !this.connected) return;
    const error = (detail && detail.error) || this.pendingFatal;
    if (error && FATAL_CODES.has(error.code)) this.fail(serverError(error));
    else this.fail(new TalkError("lost", detail && detail.reason));
  }

  // --- levels, and when the user stopped speaking ---------------------------------------------

  startTicker() {
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), TICK_MS);
  }

  tick() {
    const now = performance.now();
    this.micLevel = this.micMeter && this.micWanted() && !this.muted ? this.micMeter.level() : 0;
    if (this.micLevel > VOICE_RMS) this.lastVoiceAt = now;
    if (!this.outMeter && this.transport) this.outMeter = this.outputMeter();
    this.outLevel = this.outMeter ? this.outMeter.level() : 0;
    // The first reply audio actually heard (WebRTC: the remote track's level; the server's
    // output_audio_buffer.started only says it entered the buffer).
    const turn = this.turns.find((t) => t.awaitingAudio && t.responseId === this.speakingResponse);
    if (turn && this.outLevel > OUTPUT_RMS) this.firstAudio(turn, now);
    else if (turn && now - turn.startedAt > 1500) this.firstAudio(turn, turn.startedAt);
    this.dispatchEvent(new Event("levels"));
  }

  outputMeter() {
    if (this.transport instanceof WebSocketTransport) {
      const analyser = this.transport.outputAnalyser;
      if (!analyser) return null;
      const meter = new LevelMeter(this.ctx);
      analyser.connect(meter.analyser);
      return meter;
    }
    const stream = this.audioEl.srcObject;
    if (!stream || !stream.getAudioTracks().length) return null;
    return new LevelMeter(this.ctx, this.ctx.createMediaStreamSource(stream));
  }

  /** When the user stopped speaking: the microphone's last voiced moment, if recent. */
  endOfSpeech(now) {
    if (now - this.lastVoiceAt < SERVER_VAD_SILENCE_MS + 1500) return this.lastVoiceAt;
    return now - SERVER_VAD_SILENCE_MS;
  }

  // --- turns and latency ---------------------------------------------------------------------

  beginTurn(userItemId, endAt) {
    const turn = {
      n: this.turns.length + 1,
      userItemId,
      endAt,
      responseId: null,
      assistantItemId: null,
      awaitingAudio: false,
      startedAt: 0,
      firstAudioAt: null,
      latencyMs: null,
      interrupted: false,
    };
    this.turns.push(turn);
    this.setActivity("thinking");
    this.changed();
    return turn;
  }

  turnFor(responseId) {
    return this.turns.find((t) => t.responseId === responseId) || null;
  }

  audioStarted(responseId, at) {
    this.speakingResponse = responseId;
    this.setActivity("speaking");
    const turn = this.turnFor(responseId);
    if (!turn || turn.firstAudioAt !== null || turn.awaitingAudio) return;
    turn.awaitingAudio = true;
    turn.startedAt = at;
    if (!this.transport.reportsPlayback) this.firstAudio(turn, at); // the page's own player
  }

  firstAudio(turn, at) {
    turn.awaitingAudio = false;
    turn.firstAudioAt = at;
    turn.latencyMs = Math.max(0, Math.round(at - turn.endAt));
    if (turn.assistantItemId) this.transcript.latency(turn.assistantItemId, turn.latencyMs);
    this.changed();
  }

  // --- server events -----------------------------------------------------------------------

  onServerEvent(transport, event) {
    if (transport !== this.transport) return;
    const now = performance.now();
    switch (event.type) {
      case "session.created":
        this.sessionId = event.session && event.session.id;
        this.changed();
        break;
      case "input_audio_buffer.speech_started":
        this.transcript.add(event.item_id, "user");
        this.setActivity("listening");
        this.bargeIn({ serverCancels: true });
        break;
      case "input_audio_buffer.speech_stopped":
        this.beginTurn(event.item_id, this.endOfSpeech(now));
        break;
      case "input_audio_buffer.committed": {
        const turn = this.turns[this.turns.length - 1];
        if (turn && turn.userItemId === null) turn.userItemId = event.item_id;
        break;
      }
      case "conversation.item.added":
      case "conversation.item.created":
        this.itemAdded(event.item);
        break;
      case "conversation.item.input_audio_transcription.delta":
        if (!this.hiddenItems.has(event.item_id)) this.transcript.userDelta(event.item_id, event.delta || "");
        break;
      case "conversation.item.input_audio_transcription.completed":
        if (!this.hiddenItems.has(event.item_id)) this.transcript.userDone(event.item_id, event.transcript || "");
        break;
      case "conversation.item.input_audio_transcription.failed":
        this.transcript.userFailed(event.item_id);
        break;
      case "response.created": {
        const id = event.response.id;
        this.responses.set(id, { items: new Set(), done: false, audio: false });
        const turn = this.turns.find((t) => t.responseId === null && t.firstAudioAt === null);
        if (turn) turn.responseId = id;
        if (this.activity !== "listening") this.setActivity("thinking");
        break;
      }
      case "response.output_item.added":
        if (event.item && event.item.type === "message" && event.item.role === "assistant") {
          this.assistantItem(event.item.id, event.response_id);
        }
        break;
      case "response.output_audio_transcript.delta":
      case "response.audio_transcript.delta":
        this.assistantItem(event.item_id, event.response_id);
        if (this.interrupted.has(event.item_id)) break;
        if (this.transport.reportsPlayback) {
          this.transcript.assistantDelta(event.item_id, event.delta || "", null);
        } else {
          // Pinned to where its audio starts (the sentence's audio follows this delta).
          const at = this.transport.received(event.item_id);
          this.transcript.assistantDelta(event.item_id, event.delta || "", at);
          this.transcript.reveal(event.item_id, this.playedOf(event.item_id));
        }
        break;
      case "response.output_text.delta":
      case "response.text.delta":
        this.assistantItem(event.item_id, event.response_id);
        this.transcript.assistantDelta(event.item_id, event.delta || "", null);
        break;
      case "response.output_audio.delta":
      case "response.audio.delta": {
        const response = this.responses.get(event.response_id);
        if (response) response.audio = true;
        break;
      }
      case "response.done":
        this.responseDone(event.response);
        break;
      case "output_audio_buffer.started": {
        const response = this.responses.get(event.response_id);
        if (response) response.audio = true;
        this.audioStarted(event.response_id, now);
        break;
      }
      case "output_audio_buffer.stopped":
        this.playbackEnded(event.response_id);
        break;
      case "output_audio_buffer.cleared":
        this.playbackCleared(event.response_id);
        break;
      case "conversation.item.truncated":
        this.truncated(event.item_id);
        break;
      case "conversation.item.retrieved":
        this.retrieved(event.item);
        break;
      case "error":
        this.serverErrorEvent(event.error || {});
        break;
      default:
        break;
    }
  }

  itemAdded(item) {
    if (!item || item.type !== "message") return;
    const content = item.content || [];
    if (item.role === "user") {
      const texts = content.filter((c) => c.type === "input_text").map((c) => c.text);
      const spoken = content.some((c) => c.type === "input_audio");
      if (!texts.length && !spoken) {
        // A tts_text item tells the server what to say; it is not something the user said.
        this.hiddenItems.add(item.id);
        return;
      }
      if (texts.length) {
        this.transcript.add(item.id, "user", { text: texts.join(" ") });
        const turn = this.turns[this.turns.length - 1];
        if (turn && turn.userItemId === null && turn.typed) turn.userItemId = item.id;
      } else {
        this.transcript.add(item.id, "user");
      }
    } else if (item.role === "assistant") {
      this.transcript.add(item.id, "assistant");
    }
  }

  assistantItem(itemId, responseId) {
    if (!itemId) return;
    this.transcript.add(itemId, "assistant");
    if (responseId && !this.itemResponse.has(itemId)) {
      this.itemResponse.set(itemId, responseId);
      const response = this.responses.get(responseId);
      if (response) response.items.add(itemId);
      const turn = this.turnFor(responseId);
      if (turn && !turn.assistantItemId) {
        turn.assistantItemId = itemId;
        if (turn.latencyMs !== null) this.transcript.latency(itemId, turn.latencyMs);
      }
    }
  }

  playedOf(itemId) {
    const player = this.transport && this.transport.player;
    return (player && player.played.get(itemId)) || 0;
  }

  responseDone(response) {
    if (!response) return;
    const entry = this.responses.get(response.id) || { items: new Set(), audio: false };
    entry.done = true;
    this.responses.set(response.id, entry);
    for (const item of response.output || []) {
      if (item.type === "message" && item.role === "assistant") entry.items.add(item.id);
    }
    if (response.status === "failed") {
      const error = response.status_details && response.status_details.error;
      this.notice(`The reply failed${error && error.message ? `: ${error.message}` : "."}`);
    }
    for (const itemId of entry.items) {
      if (this.interrupted.has(itemId)) continue;
      if (!entry.audio) {
        this.transcript.assistantDone(itemId); // a text-only reply
      } else if (!this.transport.reportsPlayback) {
        // The page plays it: done once the player has played all that arrived.
        const played = this.playedOf(itemId);
        if (played >= this.transport.received(itemId) && !this.transport.playing) {
          this.transcript.assistantDone(itemId);
        }
      }
    }
    if (!entry.audio || (!this.transport.reportsPlayback && !this.transport.playing)) {
      if (this.activity !== "listening") this.setActivity("idle");
    }
    // A turn whose response ended without audio (cancelled, text only) has no latency.
    for (const turn of this.turns) {
      if (turn.responseId === response.id && turn.firstAudioAt === null) turn.awaitingAudio = false;
    }
    this.changed();
  }

  playbackEnded(responseId) {
    const entry = this.responses.get(responseId);
    if (entry) for (const itemId of entry.items) this.transcript.assistantDone(itemId);
    if (this.speakingResponse === responseId) this.speakingResponse = null;
    if (this.activity === "speaking") this.setActivity("idle");
  }

  playbackCleared(responseId) {
    const entry = this.responses.get(responseId);
    if (entry) {
      for (const itemId of entry.items) {
        if (!this.interrupted.has(itemId)) {
          this.interrupted.add(itemId);
          this.transcript.assistantInterrupted(itemId, null, 0);
          this.markTurnInterrupted(itemId);
        }
      }
    }
    if (this.speakingResponse === responseId) this.speakingResponse = null;
    if (this.activity === "speaking") this.setActivity("idle");
  }

  /** The page's own player (WebSocket transport) started, advanced or ran out. */
  onPlayback(kind, { track, offset }) {
    if (!track || this.interrupted.has(track)) return;
    const responseId = this.itemResponse.get(track);
    if (kind === "started") {
      const latency = (this.ctx.outputLatency || this.ctx.baseLatency || 0) * 1000;
      this.audioStarted(responseId, performance.now() + latency);
    }
    this.transcript.reveal(track, offset);
    if (kind === "idle") {
      const entry = this.responses.get(responseId);
      if (entry && entry.done && offset >= this.transport.received(track)) {
        this.transcript.assistantDone(track);
        if (this.speakingResponse === responseId) this.speakingResponse = null;
        if (this.activity === "speaking") this.setActivity("idle");
      }
    }
  }

  truncated(itemId) {
    if (!this.interrupted.has(itemId)) {
      this.interrupted.add(itemId);
      this.transcript.assistantInterrupted(itemId, null, 0);
      this.markTurnInterrupted(itemId);
    }
    // The server cut the item to the words heard; show exactly its text.
    this.retrieving.add(itemId);
    this.send({ type: "conversation.item.retrieve", item_id: itemId });
    this.changed();
  }

  retrieved(item) {
    if (!item || !this.retrieving.has(item.id)) return;
    this.retrieving.delete(item.id);
    const part = (item.content || []).find((c) => c.type === "output_audio" || c.type === "audio");
    if (part && typeof part.transcript === "string") this.transcript.assistantText(item.id, part.transcript);
  }

  markTurnInterrupted(itemId) {
    const turn = this.turns.find((t) => t.assistantItemId === itemId);
    if (turn) turn.interrupted = true;
  }

  serverErrorEvent(error) {
    this.lastErrorCode = error.code || error.type || "error";
    if (QUIET_CODES.has(error.code)) return;
    if (FATAL_CODES.has(error.code)) {
      // The server closes the connection next; the page says why when it does.
      this.pendingFatal = error;
      return;
    }
    if (error.code === "input_audio_buffer_commit_empty") {
      this.notice("That was too short to hear. Hold the Talk button while you speak.");
      return;
    }
    this.notice(error.message || "The server reported an error.");
  }

  // --- barge-in, push-to-talk, typing ---------------------------------------------------------

  /**
   * The user started talking over the reply: stop it. Over WebRTC the server does it (VAD) or
   * is asked to (output_audio_buffer.clear); over the WebSocket the page stops its player at
   * once and tells the server what was heard.
   * @param {{serverCancels?: boolean}} options serverCancels: server VAD already cancelled it
   */
  async bargeIn({ serverCancels = false } = {}) {
    const transport = this.transport;
    if (!transport) return;
    const active = [...this.responses.entries()].find(([, r]) => !r.done);
    if (transport.reportsPlayback) {
      if (!serverCancels && (this.speakingResponse || active)) {
        this.send({ type: "output_audio_buffer.clear" });
        if (active) this.send({ type: "response.cancel" });
      }
      return;
    }
    const cut = await transport.interruptPlayback();
    // The item cut off: the one playing, or (when the player had run dry waiting for the
    // next sentence) the reply still being generated.
    let track = cut.track;
    if (!track && active) track = [...active[1].items].pop() || null;
    if (track && !this.interrupted.has(track)) {
      const offset = cut.track ? cut.offset : this.playedOf(track);
      const received = transport.received(track);
      this.interrupted.add(track);
      transport.drop(track);
      this.transcript.assistantInterrupted(track, offset, received);
      this.markTurnInterrupted(track);
      const responseId = this.itemResponse.get(track);
      const response = this.responses.get(responseId);
      if ((response && !response.done) || offset < received) {
        // The server keeps only what was heard, in its transcript and the model's context.
        this.send({
          type: "conversation.item.truncate",
          item_id: track,
          content_index: 0,
          audio_end_ms: Math.floor((offset * 1000) / WIRE_RATE),
        });
      }
      if (this.speakingResponse === responseId) this.speakingResponse = null;
    }
    if (active && !serverCancels) this.send({ type: "response.cancel" });
  }

  /** Push-to-talk pressed. */
  async pttDown() {
    if (!this.connected || this.mode !== "ptt" || this.pttHeld) return;
    this.pttHeld = true;
    this.pttStart = performance.now();
    this.setActivity("listening");
    this.changed();
    await this.bargeIn();
    this.send({ type: "input_audio_buffer.clear" });
    await this.transport.sendMic(this.micWanted());
  }

  /** Push-to-talk released: commit what was said and ask for the reply. */
  async pttUp() {
    if (!this.pttHeld || this.pttReleasing) return;
    this.pttReleasing = true;
    const releasedAt = performance.now();
    const held = releasedAt - this.pttStart;
    await new Promise((resolve) => setTimeout(resolve, PTT_TAIL_MS));
    this.pttHeld = false;
    this.pttReleasing = false;
    if (!this.transport) return;
    await this.transport.sendMic(this.micWanted());
    if (this.muted || held < PTT_MIN_MS) {
      this.send({ type: "input_audio_buffer.clear" });
      this.setActivity("idle");
      if (!this.muted) this.notice("Hold the Talk button (or Space) while you speak.");
      this.changed();
      return;
    }
    this.send({ type: "input_audio_buffer.commit" });
    this.send({ type: "response.create" });
    this.beginTurn(null, releasedAt);
  }

  /**
   * Send a typed message and ask for the reply.
   * @param {string} text
   */
  async sendText(text) {
    if (!this.connected || !text.trim()) return;
    await this.bargeIn();
    this.send({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text: text.trim() }] },
    });
    this.send({ type: "response.create" });
    const turn = this.beginTurn(null, performance.now());
    turn.typed = true;
  }
}
