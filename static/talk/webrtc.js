// The seed-001 transport: one WebRTC call to POST /v1/realtime/calls. The microphone track
// goes up; the reply audio and the avatar's video come back on the same call; events travel
// over the "oai-events" data channel. The server plays the audio, so it reports playback
// (output_audio_buffer.*) and truncates the assistant's item itself on barge-in.

import { TalkError, serverError } from "./errors.js";

const GATHER_MS = 3000;
const OPEN_TIMEOUT_MS = 30000;
const DISCONNECTED_GRACE_MS = 4000;

/**
 * A realtime session over a WebRTC call.
 * Dispatches `server-event` (detail: the event), `lost` (detail: {reason}) and `video`.
 */
export class WebRtcTransport extends EventTarget {
  /**
   * @param {{urls: object, slug: string, videoEl: HTMLVideoElement, audioEl: HTMLAudioElement}} options
   */
  constructor(options) {
    super();
    this.options = options;
    this.kind = "webrtc";
    this.reportsPlayback = true;
    this.pc = null;
    this.channel = null;
    this.sender = null;
    this.micTrack = null;
    this.location = null;
    this.secret = null;
    this.closing = false;
    this.lostTimer = null;
  }

  /**
   * Open the call; resolves once the data channel is open.
   * @param {{secret: string, mic: MediaStream, sendMic: boolean}} args
   */
  async connect({ secret, mic, sendMic }) {
    const { urls, slug, videoEl, audioEl } = this.options;
    this.secret = secret;
    this.micTrack = mic.getAudioTracks()[0];
    const pc = new RTCPeerConnection();
    this.pc = pc;
    // The microphone's sender is created with the track even when it is not sent yet
    // (push-to-talk, muted): replaceTrack switches it without renegotiating.
    this.sender = pc.addTransceiver(this.micTrack, { direction: "sendrecv", streams: [mic] }).sender;
    if (!sendMic) await this.sender.replaceTrack(null);
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      if (event.track.kind === "video") {
        videoEl.srcObject = stream;
        videoEl.play().catch(() => {});
        this.dispatchEvent(new Event("video"));
      } else {
        audioEl.srcObject = stream;
        audioEl.play().catch(() => {});
      }
    };
    const channel = pc.createDataChannel("oai-events");
    this.channel = channel;
    channel.onmessage = (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatchEvent(new CustomEvent("server-event", { detail: data }));
    };
    const opened = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TalkError("media_failed", `no data channel after ${OPEN_TIMEOUT_MS} ms`)),
        OPEN_TIMEOUT_MS,
      );
      channel.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      channel.onclose = () => {
        clearTimeout(timer);
        reject(new TalkError("lost", "the data channel closed"));
        this.lose("the call was closed");
      };
    });
    opened.catch(() => {});
    pc.onconnectionstatechange = () => this.watch();

    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered();
    let response;
    try {
      response = await fetch(`${urls.calls}?characterName=${encodeURIComponent(slug)}`, {
        method: "POST",
        body: pc.localDescription.sdp,
        headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/sdp" },
      });
    } catch (error) {
      throw new TalkError("unreachable", String(error));
    }
    if (response.status !== 201) {
      let body = null;
      try {
        body = (await response.json()).error;
      } catch {
        body = null;
      }
      throw serverError(body, response.status);
    }
    this.location = response.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    await opened;
  }

  /** Wait for ICE gathering (at most GATHER_MS) so the offer carries the browser's candidates. */
  gathered() {
    const pc = this.pc;
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") resolve();
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, GATHER_MS);
    });
  }

  watch() {
    const state = this.pc && this.pc.connectionState;
    if (state === "failed" || state === "closed") {
      this.lose(`the call's connection ${state}`);
    } else if (state === "disconnected") {
      // A blip may recover on its own; if it does not, the call is gone.
      clearTimeout(this.lostTimer);
      this.lostTimer = setTimeout(() => {
        if (this.pc && this.pc.connectionState !== "connected") this.lose("the call disconnected");
      }, DISCONNECTED_GRACE_MS);
    } else if (state === "connected") {
      clearTimeout(this.lostTimer);
    }
  }

  lose(reason) {
    if (this.closing) return;
    this.closing = true;
    this.teardown();
    this.dispatchEvent(new CustomEvent("lost", { detail: { reason } }));
  }

  /**
   * Send a client event over the data channel.
   * @param {object} event
   * @returns {boolean} whether it was sent
   */
  send(event) {
    if (!this.channel || this.channel.readyState !== "open") return false;
    this.channel.send(JSON.stringify(event));
    return true;
  }

  /**
   * Send the microphone or not (push-to-talk). Not sending means no audio at all, so the
   * server's buffer does not fill with silence between turns.
   * @param {boolean} on
   */
  async sendMic(on) {
    if (!this.sender) return;
    const track = on ? this.micTrack : null;
    if (this.sender.track !== track) await this.sender.replaceTrack(track);
  }

  /** Hang up: tell the server (best effort: an expired secret may no longer be accepted). */
  async hangup() {
    if (this.closing) return;
    this.closing = true;
    const location = this.location;
    if (location && this.secret) {
      try {
        await fetch(`${location}/hangup`, {
          method: "POST",
          headers: { Authorization: `Bearer ${this.secret}` },
        });
      } catch {
        // The peer closing below ends the call too (the data channel closes).
      }
    }
    this.teardown();
  }

  teardown() {
    clearTimeout(this.lostTimer);
    if (this.channel) {
      this.channel.onclose = null;
      this.channel.onmessage = null;
    }
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.ontrack = null;
      this.pc.close();
    }
    this.pc = null;
    this.channel = null;
    this.sender = null;
  }
}
