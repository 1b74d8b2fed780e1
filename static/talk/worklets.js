// AudioWorklet processors of the talk page (loaded with audioWorklet.addModule).
//
// "talk-capture" turns the microphone into 24 kHz PCM16 for the realtime WebSocket; it runs at
// whatever rate the AudioContext has (Firefox refuses to connect a microphone to a context of
// another rate) and resamples here. "talk-player" plays 24 kHz PCM16 deltas back to back and
// says how much of each item has been played, which is what barge-in truncation and the
// transcript's reveal need.

const WIRE_RATE = 24000;

class TalkCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.outRate = opts.rate || WIRE_RATE;
    this.chunk = opts.chunkSamples || 960; // 40 ms at 24 kHz
    // Input samples per output sample; the box filter below averages this many (a cheap
    // anti-alias filter, enough for speech going to a 16 kHz recogniser).
    this.step = sampleRate / this.outRate;
    this.box = Math.max(1, Math.round(this.step));
    this.history = new Float32Array(this.box);
    this.historyIndex = 0;
    this.historySum = 0;
    this.previous = 0; // last filtered input sample (for interpolation across blocks)
    this.position = 0; // fractional position of the next output sample, in input samples
    this.out = new Int16Array(this.chunk);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || input[0].length === 0) return true;
    const frames = input[0].length;
    const channels = input.length;
    for (let i = 0; i < frames; i++) {
      let mono = 0;
      for (let c = 0; c < channels; c++) mono += input[c][i];
      mono /= channels;
      this.historySum += mono - this.history[this.historyIndex];
      this.history[this.historyIndex] = mono;
      this.historyIndex = (this.historyIndex + 1) % this.box;
      const current = this.historySum / this.box;
      // Emit every output sample that falls between the previous input sample and this one.
      while (this.position <= 1) {
        const value = this.previous + (current - this.previous) * this.position;
        const clamped = value < -1 ? -1 : value > 1 ? 1 : value;
        this.out[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
        if (this.filled === this.chunk) {
          this.port.postMessage(this.out.buffer, [this.out.buffer]);
          this.out = new Int16Array(this.chunk);
          this.filled = 0;
        }
        this.position += this.step;
      }
      this.position -= 1;
      this.previous = current;
    }
    return true;
  }
}

class TalkPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // [{track, samples: Int16Array, offset}] (offset: samples played of the chunk)
    this.step = WIRE_RATE / sampleRate; // wire samples per output sample
    this.frac = 0;
    this.track = null; // track now playing
    this.played = new Map(); // track -> wire samples played
    this.sinceReport = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "add") {
      this.queue.push({ track: message.track, samples: new Int16Array(message.buffer), offset: 0 });
    } else if (message.type === "interrupt") {
      // Stop at once: what is queued is dropped and the caller learns what was heard.
      const track = this.track || (this.queue[0] && this.queue[0].track) || null;
      const offset = track === null ? 0 : this.played.get(track) || 0;
      this.queue = [];
      this.frac = 0;
      if (this.track !== null) this.port.postMessage({ type: "idle", track: this.track, offset });
      this.track = null;
      this.port.postMessage({ type: "interrupted", id: message.id, track, offset });
    }
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const frames = output[0].length;
    const channel = output[0];
    for (let i = 0; i < frames; i++) {
      const head = this.queue[0];
      if (!head) {
        channel[i] = 0;
        continue;
      }
      if (head.track !== this.track) {
        if (this.track !== null) {
          this.port.postMessage({
            type: "idle",
            track: this.track,
            offset: this.played.get(this.track) || 0,
          });
        }
        this.track = head.track;
        this.port.postMessage({ type: "started", track: head.track, time: currentTime + i / sampleRate });
      }
      // Linear interpolation between this wire sample and the next (of the same chunk or
      // the next queued one), so 24 kHz plays at the context's rate.
      const a = head.samples[head.offset];
      let b = a;
      if (head.offset + 1 < head.samples.length) b = head.samples[head.offset + 1];
      else if (this.queue[1] && this.queue[1].track === head.track) b = this.queue[1].samples[0];
      channel[i] = (a + (b - a) * this.frac) / 32768;
      this.frac += this.step;
      while (this.frac >= 1 && this.queue[0]) {
        this.frac -= 1;
        const chunk = this.queue[0];
        chunk.offset += 1;
        this.played.set(chunk.track, (this.played.get(chunk.track) || 0) + 1);
        if (chunk.offset >= chunk.samples.length) this.queue.shift();
      }
    }
    for (let c = 1; c < output.length; c++) output[c].set(channel);
    if (this.track !== null && !this.queue[0]) {
      this.port.postMessage({ type: "idle", track: this.track, offset: this.played.get(this.track) || 0 });
      this.track = null;
      this.sinceReport = 0;
    } else if (this.track !== null && ++this.sinceReport >= 8) {
      // About every 21 ms at 48 kHz: often enough to reveal words as they are heard.
      this.sinceReport = 0;
      this.port.postMessage({ type: "played", track: this.track, offset: this.played.get(this.track) || 0 });
    }
    return true;
  }
}

registerProcessor("talk-capture", TalkCapture);
registerProcessor("talk-player", TalkPlayer);
