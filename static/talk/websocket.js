// The seed-000 transport: the realtime WebSocket (GA event names) carries the microphone as
// 24 kHz PCM16 from an AudioWorklet and the reply as audio deltas, which the page plays
// itself; the avatar's video comes over a second, NavTalk-style /iwebrtc signaling socket.
// The page plays the audio, so it is the page that stops playback on barge-in and tells the
// server what was heard (conversation.item.truncate).

import { MicCapture, PcmPlayer, fromBase64, toBase64 } from "./audio.js";
import { TalkError, serverError } from "./errors.js";

const OPEN_TIMEOUT_MS = 30000;

/**
 * A WebSocket URL for a same-origin path.
 * @param {string} path
 * @param {Record<string, string>} query
 * @returns {string}
 */
function wsUrl(path, query) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [key, value] of Object.entries(query)) {
    if (value) url.searchParams.set(key, value);
  }
  return url.toString();
}

/**
 * A realtime session over the WebSocket, its audio played in the page.
 * Dispatches `server-event` (detail: the event), `lost` (detail: {reason, code, error}),
 * `video`, and the player's `started` / `played` / `idle` (detail: {track, offset}).
 */
export class WebSocketTransport extends EventTarget {
  /**
   * @param {{urls: object, slug: string, userId: string, videoEl: HTMLVideoElement,
   *          ctx: AudioContext}} options
   */
  constructor(options) {
    super();
    this.options = options;
    this.kind = "websocket";
    this.reportsPlayback = false;
    this.socket = null;
    this.capture = null;
    this.player = null;
    this.video = null;
    this.micOn = false;
    this.closing = false;
    this.lastError = null;
    this.dropped = new Set(); // items cut off: their late deltas are not played
  }

  /**
   * Open the socket; resolves on session.created (the microphone then streams and the
   * avatar's video is requested).
   * @param {{secret: string, mic: MediaStream, sendMic: boolean}} args
   */
  async connect({ secret, mic, sendMic }) {
    const { urls, slug, userId, ctx } = this.options;
    this.micOn = sendMic;
    this.player = new PcmPlayer(ctx);
    await this.player.start();
    for (const type of ["started", "played", "idle"]) {
      this.player.addEventListener(type, (event) =>
        this.dispatchEvent(new CustomEvent(type, { detail: event.detail })),
      );
    }
    const socket = new WebSocket(wsUrl(urls.realtime, { characterName: slug, userId }), [
      "realtime",
      `openai-insecure-api-key.${secret}`,
    ]);
    this.socket = socket;
    const created = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TalkError("unreachable", `no session after ${OPEN_TIMEOUT_MS} ms`)),
        OPEN_TIMEOUT_MS,
      );
      socket.onmessage = (message) => {
        if (typeof message.data !== "string") return;
        let event;
        try {
          event = JSON.parse(message.data);
        } catch {
          return;
        }
        if (event.type === "error") this.lastError = event.error || null;
        if (event.type === "session.created") {
          clearTimeout(timer);
          resolve(event);
        }
        if (event.type === "response.output_audio.delta" && event.delta && !this.dropped.has(event.item_id)) {
          this.player.add(event.item_id, fromBase64(event.delta));
        }
        this.dispatchEvent(new CustomEvent("server-event", { detail: event }));
      };
      socket.onclose = (close) => {
        clearTimeout(timer);
        const error = this.lastError;
        if (error || close.code >= 4000) {
          reject(serverError(error || { code: "", message: close.reason }, close.code === 4001 ? 401 : 0));
        } else {
          reject(new TalkError(close.wasClean ? "lost" : "unreachable", `closed ${close.code}`));
        }
        this.lose(close);
      };
    });
    created.catch(() => {});
    const event = await created;

    this.capture = new MicCapture(ctx, mic);
    await this.capture.start((chunk) => {
      if (this.micOn) this.send({ type: "input_audio_buffer.append", audio: toBase64(chunk) });
    });
    this.video = new IWebRtcVideo({
      url: wsUrl(urls.iwebrtc, { userId: secret }),
      sessionId: event.session.id,
      videoEl: this.options.videoEl,
      onVideo: () => this.dispatchEvent(new Event("video")),
    });
    this.video.start();
  }

  lose(close) {
    if (this.closing) return;
    this.closing = true;
    this.teardown();
    this.dispatchEvent(
      new CustomEvent("lost", {
        detail: { reason: `the socket closed (${close.code})`, code: close.code, error: this.lastError },
      }),
    );
  }

  /**
   * Send a client event.
   * @param {object} event
   * @returns {boolean} whether it was sent
   */
  send(event) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(event));
    return true;
  }

  /**
   * Stream the microphone or not (push-to-talk).
   * @param {boolean} on
   */
  async sendMic(on) {
    this.micOn = on;
  }

  /**
   * Stop the reply's audio at once.
   * @returns {Promise<{track: string|null, offset: number, received: number}>} the item cut,
   *   the 24 kHz samples heard of it and those received
   */
  async interruptPlayback() {
    if (!this.player || !this.player.node) return { track: null, offset: 0, received: 0 };
    // Every item heard so far is over: deltas still on their way must not start it again.
    for (const track of this.player.received.keys()) this.dropped.add(track);
    const cut = await this.player.interrupt();
    return { ...cut, received: cut.track ? this.player.received.get(cut.track) || 0 : 0 };
  }

  /** Play no more of an item (it was interrupted; deltas already on their way are dropped). */
  drop(track) {
    this.dropped.add(track);
  }

  /** Samples of a track received so far (24 kHz). */
  received(track) {
    return (this.player && this.player.received.get(track)) || 0;
  }

  /** Whether reply audio is playing. */
  get playing() {
    return Boolean(this.player && this.player.busy);
  }

  /** An AnalyserNode on the reply audio (for the speaking indicator). */
  get outputAnalyser() {
    return this.player && this.player.analyser;
  }

  /** Hang up (the server saves the conversation when the socket closes). */
  async hangup() {
    if (this.closing) return;
    this.closing = true;
    this.teardown();
  }

  teardown() {
    if (this.capture) this.capture.stop();
    if (this.player) this.player.stop();
    if (this.video) this.video.close();
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.onmessage = null;
      if (this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000, "hang up");
    }
    this.capture = null;
    this.video = null;
    this.socket = null;
  }
}

/**
 * The avatar's video for a realtime WebSocket session, NavTalk-style: signaling over
 * /iwebrtc (create -> offer -> answer, candidates both ways), video on a receive-only peer.
 */
export class IWebRtcVideo {
  /**
   * @param {{url: string, sessionId: string, videoEl: HTMLVideoElement, onVideo?: () => void}} options
   */
  constructor(options) {
    this.options = options;
    this.socket = null;
    this.pc = null;
    this.pending = [];
    this.error = null;
  }

  /** Ask for the video (failures leave the still image in place; audio goes on). */
  start() {
    const { url, sessionId } = this.options;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "create", targetSessionId: sessionId }));
    socket.onmessage = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === "offer") this.answer(data).catch((error) => (this.error = String(error)));
      else if (data.type === "iceCandidate") this.candidate(data.candidate);
      else if (data.type === "error") this.error = data.code || data.message || "error";
    };
  }

  async answer(message) {
    const { sessionId, videoEl, onVideo } = this.options;
    if (this.pc) this.pc.close();
    const pc = new RTCPeerConnection();
    this.pc = pc;
    pc.ontrack = (event) => {
      videoEl.srcObject = event.streams[0] || new MediaStream([event.track]);
      videoEl.play().catch(() => {});
      if (onVideo) onVideo();
    };
    pc.onicecandidate = (event) => {
      if (event.candidate && this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(
          JSON.stringify({
            type: "iceCandidate",
            targetSessionId: message.targetSessionId || sessionId,
            candidate: event.candidate,
          }),
        );
      }
    };
    await pc.setRemoteDescription(message.sdp);
    for (const candidate of this.pending.splice(0)) await this.candidate(candidate);
    await pc.setLocalDescription(await pc.createAnswer());
    this.socket.send(
      JSON.stringify({
        type: "answer",
        targetSessionId: message.targetSessionId || sessionId,
        sdp: pc.localDescription,
      }),
    );
  }

  async candidate(candidate) {
    if (!candidate) return;
    if (!this.pc || !this.pc.remoteDescription) {
      this.pending.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate);
    } catch {
      // A candidate the browser cannot use (another address family): the others remain.
    }
  }

  /** Stop the video. */
  close() {
    if (this.socket) {
      this.socket.onmessage = null;
      this.socket.close(1000);
    }
    if (this.pc) this.pc.close();
    this.socket = null;
    this.pc = null;
  }
}
