// Browser audio for realtime conversations, with the API of the Realtime reference console's
// wavtools (seed 002): WavRecorder captures the microphone as 16-bit PCM at a chosen rate,
// WavStreamPlayer plays streamed 16-bit PCM replies and says how much of each was heard.
//
// Both run their audio in AudioWorklets (never the deprecated ScriptProcessor) inside an
// AudioContext at the device's own rate, and resample in the worklet: Firefox refuses to
// connect a microphone to a context created with another sampleRate, and Safari may ignore
// the option. Plain ES modules; the worklets are loaded relative to this file.

import { floatTo16BitPCM, toInt16 } from "./utils.js";
import { StreamResampler } from "./worklets/resampler.js";

const RECORDER_WORKLET = new URL("./worklets/recorder-processor.js", import.meta.url).href;
const STREAM_WORKLET = new URL("./worklets/stream-processor.js", import.meta.url).href;
const AudioContextClass = globalThis.AudioContext ?? globalThis.webkitAudioContext;

/**
 * A packed WAV file.
 * @typedef {object} WavPackerAudioType
 * @property {Blob} blob `audio/wav`
 * @property {string} url an object URL of the blob (revoke it when done)
 * @property {number} channelCount
 * @property {number} sampleRate
 * @property {number} duration seconds
 */

/**
 * Decoded audio, ready to play or draw.
 * @typedef {object} DecodedAudioType
 * @property {Blob} blob a 16-bit WAV at the requested rate
 * @property {string} url an object URL of the blob
 * @property {Float32Array} values the samples, in [-1, 1]
 * @property {AudioBuffer} audioBuffer
 */

/**
 * Spectrum for a visualisation, each value normalised to [0, 1].
 * @typedef {object} AudioAnalysisOutputType
 * @property {Float32Array} values
 * @property {number[]} frequencies Hz of each value
 * @property {string[]} labels
 */

/** Packs 16-bit PCM into WAV files. */
export class WavPacker {
  /**
   * @param {number} sampleRate
   * @param {Int16Array} samples mono, or interleaved when channelCount > 1
   * @param {number} [channelCount=1]
   * @returns {WavPackerAudioType}
   */
  static pack(sampleRate, samples, channelCount = 1) {
    const blob = new Blob([WavPacker.header(sampleRate, samples.length * 2, channelCount), samples], {
      type: "audio/wav",
    });
    return {
      blob,
      url: URL.createObjectURL(blob),
      channelCount,
      sampleRate,
      duration: samples.length / channelCount / sampleRate,
    };
  }

  /**
   * The 44-byte header of a 16-bit PCM WAV file.
   * @param {number} sampleRate
   * @param {number} dataBytes
   * @param {number} [channelCount=1]
   * @returns {ArrayBuffer}
   */
  static header(sampleRate, dataBytes, channelCount = 1) {
    const view = new DataView(new ArrayBuffer(44));
    const text = (offset, value) => {
      for (let i = 0; i < value.length; i++) view.setUint8(offset + i, value.charCodeAt(i));
    };
    text(0, "RIFF");
    view.setUint32(4, 36 + dataBytes, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, channelCount, true);
    view.setUint32(24, sampleRate, true);
    view.setUint32(28, sampleRate * channelCount * 2, true);
    view.setUint16(32, channelCount * 2, true);
    view.setUint16(34, 16, true);
    text(36, "data");
    view.setUint32(40, dataBytes, true);
    return view.buffer;
  }
}

const NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

/**
 * Spectrum of an analyser: every FFT bin ("frequency"), or one value per musical note
 * ("music", C1–B8) or per note in the voice range ("voice", 32 Hz–2 kHz).
 * @param {AnalyserNode} analyser
 * @param {number} sampleRate
 * @param {"frequency"|"music"|"voice"} analysisType
 * @param {number} minDecibels
 * @param {number} maxDecibels
 * @returns {AudioAnalysisOutputType}
 */
export function analyseFrequencies(analyser, sampleRate, analysisType = "frequency", minDecibels = -100, maxDecibels = -30) {
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const binHz = sampleRate / 2 / bins.length;
  const level = (db) => Math.max(0, Math.min(1, (db - minDecibels) / (maxDecibels - minDecibels)));
  if (analysisType === "frequency") {
    const values = bins.map(level);
    const frequencies = Array.from(bins, (_, i) => (i + 0.5) * binHz);
    return { values, frequencies, labels: frequencies.map((f) => `${Math.round(f)} Hz`) };
  }
  const frequencies = [];
  const labels = [];
  const levels = [];
  for (let midi = 24; midi < 120; midi++) {
    const hz = 440 * 2 ** ((midi - 69) / 12);
    if (analysisType === "voice" && (hz < 32 || hz > 2000)) continue;
    const lo = Math.max(0, Math.floor((hz * 2 ** (-1 / 24)) / binHz));
    const hi = Math.min(bins.length - 1, Math.max(lo, Math.ceil((hz * 2 ** (1 / 24)) / binHz)));
    let db = -Infinity;
    for (let i = lo; i <= hi; i++) db = Math.max(db, bins[i]);
    frequencies.push(hz);
    labels.push(`${NOTE_NAMES[midi % 12]}${Math.floor(midi / 12) - 1}`);
    levels.push(level(db));
  }
  return { values: Float32Array.from(levels), frequencies, labels };
}

function makeAnalyser(context) {
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0.1;
  return analyser;
}

// Joins Int16 chunks into one array.
function joinInt16(chunks) {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Captures the microphone as 16-bit PCM at `sampleRate`.
 *
 *   const recorder = new WavRecorder({ sampleRate: 16000 });
 *   await recorder.begin();
 *   await recorder.record(({ mono }) => client.appendInputAudio(mono));
 */
export class WavRecorder {
  /**
   * @param {object} [options]
   * @param {number} [options.sampleRate=44100] rate of the samples handed out
   * @param {boolean} [options.outputToSpeakers=false] also play the microphone (monitoring)
   * @param {number} [options.maxSavedSeconds=600] how much recorded audio save() keeps
   * @param {MediaTrackConstraints} [options.constraints] getUserMedia audio constraints
   * @param {boolean} [options.debug=false]
   */
  constructor({
    sampleRate = 44100,
    outputToSpeakers = false,
    maxSavedSeconds = 600,
    constraints = {},
    debug = false,
  } = {}) {
    this.sampleRate = sampleRate;
    this.constraints = constraints;
    this.outputToSpeakers = outputToSpeakers;
    this.maxSavedSeconds = maxSavedSeconds;
    this.debug = !!debug;
    this.stream = null;
    this.context = null;
    this.processor = null;
    this.source = null;
    this.analyser = null;
    this._recording = false;
    this._saved = [];
    this._savedSamples = 0;
    this._chunkProcessor = null;
    this._chunkProcessorSize = 8192;
    this._chunkBuffer = { mono: [], raw: [], bytes: 0 };
    this._requests = new Map();
    this._nextRequest = 0;
    this._stopping = null;
    this._deviceChangeCallback = null;
    this._devicesListener = null;
  }

  /**
   * Decode audio for playback or display: raw PCM (Int16Array, Float32Array, or an
   * ArrayBuffer of 16-bit PCM) at `fromSampleRate`, or, when `fromSampleRate` is -1, an
   * encoded file (WAV, MP3… as an ArrayBuffer or Blob) the browser decodes. The result is at
   * `sampleRate`.
   * @param {Int16Array|Float32Array|ArrayBuffer|Blob} audioData
   * @param {number} [sampleRate=44100]
   * @param {number} [fromSampleRate=-1]
   * @returns {Promise<DecodedAudioType>}
   */
  static async decode(audioData, sampleRate = 44100, fromSampleRate = -1) {
    let values;
    if (fromSampleRate === -1) {
      const bytes = audioData instanceof Blob ? await audioData.arrayBuffer() : toArrayBuffer(audioData);
      const offline = new OfflineAudioContext(1, 1, sampleRate);
      const decoded = await offline.decodeAudioData(bytes);
      values = decoded.getChannelData(0).slice();
    } else {
      const floats = audioData instanceof Float32Array ? audioData : pcmToFloat(toInt16(audioData));
      if (fromSampleRate === sampleRate) {
        values = floats.slice();
      } else {
        const resampler = new StreamResampler(fromSampleRate, sampleRate);
        const head = resampler.process(floats).slice();
        const tail = resampler.flush();
        values = new Float32Array(head.length + tail.length);
        values.set(head);
        values.set(tail, head.length);
      }
    }
    const audioBuffer = new AudioBuffer({ length: Math.max(1, values.length), numberOfChannels: 1, sampleRate });
    audioBuffer.copyToChannel(values, 0);
    const { blob, url } = WavPacker.pack(sampleRate, floatTo16BitPCM(values));
    return { blob, url, values, audioBuffer };
  }

  /** Whether chunks are being captured (false while paused or ended). */
  get recording() {
    return this._recording;
  }

  /** @returns {number} */
  getSampleRate() {
    return this.sampleRate;
  }

  /** @returns {"ended"|"paused"|"recording"} */
  getStatus() {
    if (!this.processor) return "ended";
    return this._recording ? "recording" : "paused";
  }

  log(...args) {
    if (this.debug) console.log("[WavRecorder]", ...args);
  }

  /**
   * Ask for microphone permission without keeping the microphone open.
   * @returns {Promise<true>}
   */
  async requestPermission() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) track.stop();
    return true;
  }

  /**
   * The audio inputs; the system default first, marked `default: true`. Labels are empty
   * until the page has microphone permission.
   * @returns {Promise<Array<MediaDeviceInfo & {default: boolean}>>}
   */
  async listDevices() {
    const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
    const defaultIndex = devices.findIndex((d) => d.deviceId === "default");
    const list = devices.map((d) => ({
      deviceId: d.deviceId,
      groupId: d.groupId,
      kind: d.kind,
      label: d.label,
      default: false,
    }));
    if (defaultIndex > -1) {
      const [fallback] = list.splice(defaultIndex, 1);
      const real = list.find((d) => d.groupId === fallback.groupId) ?? fallback;
      if (real !== fallback) list.splice(list.indexOf(real), 1);
      list.unshift({ ...real, default: true });
    } else if (list.length) {
      list[0].default = true;
    }
    return list;
  }

  /**
   * Call `callback` with the device list now and whenever a device is plugged in or out;
   * null stops listening.
   * @param {((devices: Array<object>) => void)|null} callback
   */
  async listenForDeviceChange(callback) {
    if (this._devicesListener) {
      navigator.mediaDevices.removeEventListener("devicechange", this._devicesListener);
      this._devicesListener = null;
    }
    this._deviceChangeCallback = callback;
    if (!callback) return true;
    let last = "";
    const tell = async () => {
      const devices = await this.listDevices();
      const key = JSON.stringify(devices);
      if (key !== last && this._deviceChangeCallback === callback) {
        last = key;
        callback(devices);
      }
    };
    this._devicesListener = () => void tell();
    navigator.mediaDevices.addEventListener("devicechange", this._devicesListener);
    await tell();
    return true;
  }

  /**
   * Open the microphone (asks for permission) and get ready to record.
   * @param {string} [deviceId] an input from listDevices(); the default otherwise
   * @returns {Promise<true>}
   * @throws {DOMException} NotAllowedError when permission is refused, NotFoundError when
   *   there is no microphone
   */
  async begin(deviceId) {
    if (this.processor) throw new Error("Already connected: please call .end() to start a new session");
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("Could not request user media");
    const audio = { ...this.constraints };
    if (deviceId) audio.deviceId = { exact: deviceId };
    this.stream = await navigator.mediaDevices.getUserMedia({ audio });
    const context = new AudioContextClass();
    try {
      if (context.state === "suspended") await context.resume();
      await context.audioWorklet.addModule(RECORDER_WORKLET);
      const source = context.createMediaStreamSource(this.stream);
      const processor = new AudioWorkletNode(context, "realtime-recorder-processor", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { sampleRate: this.sampleRate },
      });
      processor.port.onmessage = (message) => this._onMessage(message.data);
      const analyser = makeAnalyser(context);
      source.connect(processor);
      source.connect(analyser);
      // A node no path leads from to the destination may not be run by every browser.
      const sink = context.createGain();
      sink.gain.value = 0;
      processor.connect(sink).connect(context.destination);
      if (this.outputToSpeakers) source.connect(context.destination);
      Object.assign(this, { context, source, processor, analyser });
    } catch (error) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
      await context.close().catch(() => {});
      throw error;
    }
    this.log(`capturing at ${this.context.sampleRate} Hz, delivering ${this.sampleRate} Hz`);
    return true;
  }

  _onMessage(data) {
    if (data.event === "chunk") {
      this._save(data.mono);
      const buffer = this._chunkBuffer;
      buffer.mono.push(data.mono);
      buffer.raw.push(data.raw);
      buffer.bytes += data.mono.byteLength;
      if (this._chunkProcessor && buffer.bytes >= this._chunkProcessorSize) this._emitChunk();
    } else if (data.event === "stopped") {
      this._requests.get(data.id)?.();
      this._requests.delete(data.id);
    }
  }

  _save(mono) {
    this._saved.push(mono);
    this._savedSamples += mono.length;
    const limit = this.maxSavedSeconds * this.sampleRate;
    while (this._savedSamples - this._saved[0].length >= limit) {
      this._savedSamples -= this._saved.shift().length;
    }
  }

  _emitChunk() {
    const buffer = this._chunkBuffer;
    this._chunkBuffer = { mono: [], raw: [], bytes: 0 };
    if (!buffer.bytes || !this._chunkProcessor) return;
    const chunk = { mono: joinInt16(buffer.mono), raw: joinInt16(buffer.raw) };
    try {
      const result = this._chunkProcessor(chunk);
      if (result && typeof result.catch === "function") result.catch((e) => console.error(e));
    } catch (error) {
      console.error("WavRecorder chunk processor failed", error);
    }
  }

  /**
   * Spectrum of the microphone, for a visualisation.
   * @param {"frequency"|"music"|"voice"} [analysisType="frequency"]
   * @param {number} [minDecibels=-100]
   * @param {number} [maxDecibels=-30]
   * @returns {AudioAnalysisOutputType}
   */
  getFrequencies(analysisType = "frequency", minDecibels = -100, maxDecibels = -30) {
    if (!this.processor) throw new Error("Session ended: please call .begin() first");
    return analyseFrequencies(this.analyser, this.context.sampleRate, analysisType, minDecibels, maxDecibels);
  }

  /**
   * Start handing out audio: `chunkProcessor({mono, raw})` gets Int16Arrays at `sampleRate`
   * (mono, and all channels interleaved) once at least `chunkSize` bytes of mono audio are in.
   * @param {(chunk: {mono: Int16Array, raw: Int16Array}) => any} [chunkProcessor]
   * @param {number} [chunkSize=8192] bytes of mono audio per call (8192 = 4096 samples)
   * @returns {Promise<true>}
   */
  async record(chunkProcessor = () => {}, chunkSize = 8192) {
    if (!this.processor) throw new Error("Session ended: please call .begin() first");
    if (this._recording) throw new Error("Already recording: please call .pause() first");
    if (typeof chunkProcessor !== "function") throw new Error("chunkProcessor must be a function");
    this._recording = true;
    await this._stopping; // the last recording's final chunk goes to its own processor
    this._chunkProcessor = chunkProcessor;
    this._chunkProcessorSize = chunkSize;
    this._chunkBuffer = { mono: [], raw: [], bytes: 0 };
    if (this._recording) this.processor.port.postMessage({ event: "start" });
    return true;
  }

  /**
   * Stop handing out audio (the microphone stays open). The partial last chunk is handed out
   * before this resolves, so push-to-talk loses nothing at the end of a turn.
   * @returns {Promise<true>}
   */
  async pause() {
    if (!this.processor) throw new Error("Session ended: please call .begin() first");
    if (!this._recording) throw new Error("Already paused: please call .record() first");
    this._recording = false;
    this._stopping = this._stop();
    await this._stopping;
    return true;
  }

  async _stop() {
    const id = ++this._nextRequest;
    const done = new Promise((resolve) => this._requests.set(id, resolve));
    this.processor.port.postMessage({ event: "stop", id });
    // A closed context never answers; do not wait for ever.
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 1000))]);
    this._requests.delete(id);
    this._emitChunk();
    this._chunkProcessor = null;
  }

  /**
   * Forget the audio recorded so far (what save() would return).
   * @returns {Promise<true>}
   */
  async clear() {
    if (!this.processor) throw new Error("Session ended: please call .begin() first");
    this._saved = [];
    this._savedSamples = 0;
    return true;
  }

  /**
   * The audio recorded so far as a WAV file.
   * @param {boolean} [force=false] allow saving while recording
   * @returns {Promise<WavPackerAudioType>}
   */
  async save(force = false) {
    if (!this.processor) throw new Error("Session ended: please call .begin() first");
    if (!force && this._recording) {
      throw new Error("Currently recording: please call .pause() first, or call .save(true) to force");
    }
    return WavPacker.pack(this.sampleRate, joinInt16(this._saved));
  }

  /**
   * Stop recording, close the microphone, and return what was recorded (null when begin()
   * was never called, so a page can always call end() when tearing down).
   * @returns {Promise<WavPackerAudioType|null>}
   */
  async end() {
    if (!this.processor) return null;
    if (this._recording) await this.pause();
    const packed = WavPacker.pack(this.sampleRate, joinInt16(this._saved));
    for (const track of this.stream.getTracks()) track.stop();
    this.processor.port.onmessage = null;
    this.source.disconnect();
    this.processor.disconnect();
    await this.context.close().catch(() => {});
    Object.assign(this, { stream: null, context: null, source: null, processor: null, analyser: null });
    this._saved = [];
    this._savedSamples = 0;
    return packed;
  }

  /** end() and stop listening for device changes. */
  async quit() {
    await this.listenForDeviceChange(null);
    return this.end();
  }
}

function toArrayBuffer(data) {
  if (data instanceof ArrayBuffer) return data.slice(0);
  if (ArrayBuffer.isView(data)) return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  throw new TypeError("audio must be an ArrayBuffer, a typed array or a Blob");
}

function pcmToFloat(pcm) {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 0x8000;
  return out;
}

/**
 * Plays streamed 16-bit PCM (e.g. a reply's audio deltas) gaplessly.
 *
 *   const player = new WavStreamPlayer({ sampleRate: 8000 });
 *   await player.connect();
 *   player.add16BitPCM(delta.audio, item.id);
 *   const { trackId, offset } = (await player.interrupt()) ?? {};
 */
export class WavStreamPlayer {
  /**
   * @param {object} [options]
   * @param {number} [options.sampleRate=44100] rate of the PCM given to add16BitPCM
   * @param {number} [options.endGraceMs=250] silence after which playback counts as ended
   */
  constructor({ sampleRate = 44100, endGraceMs = 250 } = {}) {
    this.sampleRate = sampleRate;
    this.endGraceMs = endGraceMs;
    this.context = null;
    this.stream = null;
    this.analyser = null;
    /** @type {(() => any)|null} called when sound starts after silence */
    this.onplay = null;
    /** @type {(() => any)|null} called when the queue has played out, or on interrupt */
    this.onended = null;
    this.interruptedTrackIds = {};
    this._pending = [];
    this._requests = new Map();
    this._nextRequest = 0;
    this._playing = false;
  }

  /** Whether audio is playing (or briefly paused between two parts of a reply). */
  get playing() {
    return this._playing;
  }

  /**
   * Open the audio output. Call it from a user gesture (a click) in browsers that require one.
   * @returns {Promise<true>}
   */
  async connect() {
    if (this.context) return true;
    const context = new AudioContextClass();
    if (context.state === "suspended") await context.resume();
    await context.audioWorklet.addModule(STREAM_WORKLET);
    const stream = new AudioWorkletNode(context, "realtime-stream-processor", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { sampleRate: this.sampleRate, endGraceMs: this.endGraceMs },
    });
    stream.port.onmessage = (message) => this._onMessage(message.data);
    const analyser = makeAnalyser(context);
    stream.connect(analyser).connect(context.destination);
    Object.assign(this, { context, stream, analyser });
    // Audio added before connect() (a reply can start while the page is still opening the
    // microphone) plays now.
    const pending = this._pending;
    this._pending = [];
    for (const { buffer, trackId } of pending) this._write(buffer, trackId);
    return true;
  }

  _onMessage(data) {
    if (data.event === "play") {
      this._playing = true;
      this._call(this.onplay);
    } else if (data.event === "ended") {
      this._playing = false;
      this._call(this.onended);
    } else if (data.event === "offset") {
      this._requests.get(data.requestId)?.(data);
      this._requests.delete(data.requestId);
    }
  }

  _call(callback) {
    if (typeof callback !== "function") return;
    try {
      const result = callback();
      if (result && typeof result.catch === "function") result.catch((e) => console.error(e));
    } catch (error) {
      console.error("WavStreamPlayer callback failed", error);
    }
  }

  /**
   * Spectrum of what is playing, for a visualisation.
   * @param {"frequency"|"music"|"voice"} [analysisType="frequency"]
   * @param {number} [minDecibels=-100]
   * @param {number} [maxDecibels=-30]
   * @returns {AudioAnalysisOutputType}
   */
  getFrequencies(analysisType = "frequency", minDecibels = -100, maxDecibels = -30) {
    if (!this.analyser) throw new Error("Not connected, please call .connect() first");
    return analyseFrequencies(this.analyser, this.context.sampleRate, analysisType, minDecibels, maxDecibels);
  }

  /**
   * Queue 16-bit PCM at the player's sampleRate; it plays right after what is queued. Audio
   * of a track that was interrupted is ignored (late deltas of a cancelled reply).
   * @param {Int16Array|ArrayBuffer} arrayBuffer
   * @param {string} [trackId="default"] e.g. the assistant item's id
   * @returns {Int16Array} the samples queued
   */
  add16BitPCM(arrayBuffer, trackId = "default") {
    if (typeof trackId !== "string") throw new Error("trackId must be a string");
    const buffer = toInt16(arrayBuffer);
    if (this.interruptedTrackIds[trackId]) return buffer;
    if (!this.stream) this._pending.push({ buffer: buffer.slice(), trackId });
    else this._write(buffer, trackId);
    return buffer;
  }

  _write(buffer, trackId) {
    const copy = buffer.slice(); // transferred to the worklet; the caller keeps its array
    this.stream.port.postMessage({ event: "write", buffer: copy, trackId }, [copy.buffer]);
  }

  /**
   * Where playback is: the track playing and how many of its samples (at the player's
   * sampleRate) have been played; null when nothing is playing.
   * @param {boolean} [interrupt=false] also stop playback and drop what is queued
   * @returns {Promise<{trackId: string, offset: number, currentTime: number}|null>}
   */
  async getTrackSampleOffset(interrupt = false) {
    if (!this.stream) {
      if (interrupt) this._pending = [];
      return null;
    }
    const requestId = ++this._nextRequest;
    const answer = new Promise((resolve) => this._requests.set(requestId, resolve));
    this.stream.port.postMessage({ event: "offset", requestId, interrupt });
    const { trackId, offset, currentTime } = await answer;
    if (trackId === null) return null;
    if (interrupt) this.interruptedTrackIds[trackId] = true;
    return { trackId, offset, currentTime };
  }

  /**
   * Stop playback now and drop what is queued.
   * @returns {Promise<{trackId: string, offset: number, currentTime: number}|null>} what was
   *   playing and how much of it was heard (pass to RealtimeClient.cancelResponse), or null
   */
  async interrupt() {
    return this.getTrackSampleOffset(true);
  }

  /** Close the audio output (connect() opens it again). */
  async disconnect() {
    if (!this.context) return true;
    const context = this.context;
    this.stream.port.onmessage = null;
    this.stream.disconnect();
    Object.assign(this, { context: null, stream: null, analyser: null, _playing: false });
    for (const resolve of this._requests.values()) resolve({ trackId: null });
    this._requests.clear();
    await context.close().catch(() => {});
    return true;
  }
}
