// Audio helpers of the talk page: the microphone as 24 kHz PCM16 chunks, a PCM16 stream
// player that knows what has been heard, and a level meter. AudioWorklets only (the
// deprecated ScriptProcessor is never used); the AudioContext runs at the device's own rate.

const WORKLETS = new URL("./worklets.js", import.meta.url);
const loaded = new WeakMap();

/**
 * Load the talk page's worklet processors into a context (once per context).
 * @param {AudioContext} ctx
 * @returns {Promise<void>}
 */
export function loadWorklets(ctx) {
  if (!loaded.has(ctx)) loaded.set(ctx, ctx.audioWorklet.addModule(WORKLETS));
  return loaded.get(ctx);
}

/** The microphone as 24 kHz mono PCM16, in 40 ms chunks, from an AudioWorklet. */
export class MicCapture {
  /**
   * @param {AudioContext} ctx
   * @param {MediaStream} stream the microphone
   */
  constructor(ctx, stream) {
    this.ctx = ctx;
    this.stream = stream;
    this.node = null;
    this.source = null;
  }

  /**
   * Start capturing; `onChunk` gets an ArrayBuffer of PCM16 (little-endian) at 24 kHz.
   * @param {(chunk: ArrayBuffer) => void} onChunk
   */
  async start(onChunk) {
    await loadWorklets(this.ctx);
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, "talk-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { rate: 24000, chunkSamples: 960 },
    });
    this.node.port.onmessage = (event) => onChunk(event.data);
    this.source.connect(this.node);
  }

  /** Stop capturing (the microphone stream itself stays open). */
  stop() {
    if (this.source) this.source.disconnect();
    if (this.node) this.node.port.onmessage = null;
    this.source = null;
    this.node = null;
  }
}

/**
 * Plays 24 kHz PCM16 deltas back to back as they arrive (the server's avatar link assumes
 * exactly that), one "track" per assistant item, and reports what has been played.
 * Dispatches `started`, `played` and `idle` events with `detail = {track, offset}` (offset in
 * 24 kHz samples played of that track).
 */
export class PcmPlayer extends EventTarget {
  /** @param {AudioContext} ctx */
  constructor(ctx) {
    super();
    this.ctx = ctx;
    this.node = null;
    this.analyser = null;
    this.played = new Map();
    this.received = new Map();
    this.playing = null;
    this.waiters = new Map();
    this.nextId = 1;
  }

  /** Create the worklet node and connect it to the speakers. */
  async start() {
    await loadWorklets(this.ctx);
    this.node = new AudioWorkletNode(this.ctx, "talk-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.node.port.onmessage = (event) => this.onMessage(event.data);
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.node.connect(this.analyser);
    this.node.connect(this.ctx.destination);
  }

  onMessage(message) {
    if (message.type === "interrupted") {
      const done = this.waiters.get(message.id);
      this.waiters.delete(message.id);
      if (message.track !== null) this.played.set(message.track, message.offset);
      this.playing = null;
      if (done) done({ track: message.track, offset: message.offset });
      return;
    }
    this.played.set(message.track, message.offset);
    if (message.type === "started") this.playing = message.track;
    if (message.type === "idle" && this.playing === message.track) this.playing = null;
    this.dispatchEvent(
      new CustomEvent(message.type, { detail: { track: message.track, offset: message.offset } }),
    );
  }

  /**
   * Queue PCM16 audio of a track.
   * @param {string} track the assistant item id
   * @param {ArrayBuffer} buffer 24 kHz PCM16 (transferred to the worklet)
   */
  add(track, buffer) {
    this.received.set(track, (this.received.get(track) || 0) + buffer.byteLength / 2);
    this.node.port.postMessage({ type: "add", track, buffer }, [buffer]);
  }

  /**
   * Stop playing at once and drop what is queued.
   * @returns {Promise<{track: string|null, offset: number}>} the track cut and samples heard
   */
  interrupt() {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.node.port.postMessage({ type: "interrupt", id });
    });
  }

  /** Whether audio is playing now. */
  get busy() {
    return this.playing !== null;
  }

  /** Stop and disconnect. */
  stop() {
    if (this.node) {
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    this.node = null;
  }
}

/** RMS level (0..1) of an audio node, read from an AnalyserNode. */
export class LevelMeter {
  /**
   * @param {AudioContext} ctx
   * @param {AudioNode} [node] the node to measure (see `attach`)
   */
  constructor(ctx, node) {
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.data = new Float32Array(this.analyser.fftSize);
    if (node) node.connect(this.analyser);
  }

  /** The current RMS level, 0..1. */
  level() {
    this.analyser.getFloatTimeDomainData(this.data);
    let sum = 0;
    for (let i = 0; i < this.data.length; i++) sum += this.data[i] * this.data[i];
    return Math.sqrt(sum / this.data.length);
  }
}

/**
 * PCM16 bytes to base64.
 * @param {ArrayBuffer} buffer
 * @returns {string}
 */
export function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Base64 to bytes (an ArrayBuffer).
 * @param {string} text
 * @returns {ArrayBuffer}
 */
export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}
