// AudioWorklet of WavStreamPlayer: plays queued 16-bit PCM gaplessly, resampled from the
// player's rate to the context's, and knows how much of each track has been played.
//
// Messages in:  {event: "write", buffer: Int16Array, trackId}
//               {event: "offset", requestId, interrupt: boolean}
// Messages out: {event: "play"} when sound starts after silence
//               {event: "ended"} when the queue stayed empty for the grace period, or on interrupt
//               {event: "offset", requestId, trackId, offset, currentTime} (trackId null: idle)
//
// Positions are counted in source samples (the player's sampleRate) from the first write.

import { StreamResampler } from "./resampler.js";

class StreamProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options?.processorOptions ?? {};
    this.sourceRate = opts.sampleRate ?? sampleRate;
    // How long an empty queue may last before the stream counts as ended. Replies arrive
    // sentence by sentence; a short underrun between two should not flip the page's
    // "speaking" state (and, in the seed example, the microphone) off and on again.
    this.graceFrames = Math.round(((opts.endGraceMs ?? 250) / 1000) * sampleRate);
    this.resampler = new StreamResampler(this.sourceRate, sampleRate);
    this.queue = []; // {samples: Float32Array, read: number}, oldest first
    this.pending = new Float32Array(0); // resampled output not yet played
    this.pendingRead = 0;
    this.uncounted = 0; // pending outputs that belong to an earlier run (a filter tail)
    this.written = 0; // source samples ever queued
    this.segments = []; // {trackId, start, end}: where tracks lie in the source stream
    this.prunedPlayed = new Map(); // trackId -> played samples of segments already dropped
    this.state = "idle"; // idle | playing | waiting (queue empty, within the grace period)
    this.waited = 0;
    this.runBase = 0; // source position of the current run's first output
    this.runOutputs = 0; // outputs played in the current run
    this.runInput = 0; // source samples fed to the resampler in the current run
    this.played = 0; // source position up to which audio has been played
    this.port.onmessage = (message) => this.onMessage(message.data);
  }

  onMessage(data) {
    if (data.event === "write") {
      const pcm = data.buffer;
      if (!pcm.length) return;
      const floats = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i] / 0x8000;
      this.queue.push({ samples: floats, read: 0 });
      const last = this.segments[this.segments.length - 1];
      if (last && last.trackId === data.trackId && last.end === this.written) {
        last.end += pcm.length;
      } else {
        this.segments.push({ trackId: data.trackId, start: this.written, end: this.written + pcm.length });
      }
      this.written += pcm.length;
    } else if (data.event === "offset") {
      this.port.postMessage({ event: "offset", requestId: data.requestId, ...this.position() });
      if (data.interrupt) this.stop();
    }
  }

  // The track being played, and how many of its samples have been played.
  position() {
    const none = { trackId: null, offset: 0, currentTime: 0 };
    if (this.state === "idle") return none;
    const played = Math.floor(this.played); // whole samples: a fraction is still being played
    let current = this.segments.find((s) => s.start <= played && played < s.end);
    if (!current) {
      // Waiting after the last sample (an underrun): the track that just played.
      for (const s of this.segments) if (s.end <= played) current = s;
    }
    if (!current) return none;
    let offset = this.prunedPlayed.get(current.trackId) ?? 0;
    for (const s of this.segments) {
      if (s.trackId === current.trackId) offset += Math.max(0, Math.min(played, s.end) - s.start);
    }
    return { trackId: current.trackId, offset, currentTime: offset / this.sourceRate };
  }

  // Drop everything queued and go quiet (interrupt).
  stop() {
    const wasOn = this.state !== "idle";
    this.queue = [];
    this.pending = new Float32Array(0);
    this.pendingRead = 0;
    this.uncounted = 0;
    this.resampler.reset();
    this.segments = [];
    this.prunedPlayed.clear();
    this.played = this.written;
    this.runBase = this.written;
    this.runInput = 0;
    this.runOutputs = 0;
    this.state = "idle";
    if (wasOn) this.port.postMessage({ event: "ended" });
  }

  startRun() {
    if (this.state === "idle") this.port.postMessage({ event: "play" });
    this.state = "playing";
    this.waited = 0;
    this.runBase = this.played;
    this.runOutputs = 0;
    this.runInput = 0;
    this.uncounted = this.pending.length - this.pendingRead;
  }

  // Resample the next stretch of the queue into `pending`; false when the queue is empty.
  refill() {
    while (this.queue.length) {
      const head = this.queue[0];
      const take = Math.min(512, head.samples.length - head.read);
      const input = head.samples.subarray(head.read, head.read + take);
      head.read += take;
      if (head.read >= head.samples.length) this.queue.shift();
      this.runInput += take;
      const out = this.resampler.process(input);
      if (out.length) {
        this.pending = out.slice();
        this.pendingRead = 0;
        return true;
      }
    }
    return false;
  }

  prune() {
    // Segments wholly played are no longer needed, except the last one (the track a "waiting"
    // player still reports); their played samples are remembered per track.
    while (this.segments.length > 1 && this.segments[0].end <= this.played) {
      const first = this.segments.shift();
      const before = this.prunedPlayed.get(first.trackId) ?? 0;
      this.prunedPlayed.set(first.trackId, before + (first.end - first.start));
    }
    if (this.prunedPlayed.size > 64) {
      const live = new Set(this.segments.map((s) => s.trackId));
      for (const id of this.prunedPlayed.keys()) if (!live.has(id)) this.prunedPlayed.delete(id);
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const frames = out.length;
    let filled = 0;
    if (this.state !== "playing" && this.queue.length) this.startRun();
    while (filled < frames) {
      if (this.pendingRead < this.pending.length) {
        const n = Math.min(frames - filled, this.pending.length - this.pendingRead);
        out.set(this.pending.subarray(this.pendingRead, this.pendingRead + n), filled);
        this.pendingRead += n;
        filled += n;
        if (this.state === "playing") {
          const skipped = Math.min(n, this.uncounted);
          this.uncounted -= skipped;
          this.runOutputs += n - skipped;
          this.played = this.runBase + Math.min(this.runInput, this.runOutputs * this.resampler.step);
        }
        continue;
      }
      if (this.state !== "playing") break;
      if (this.refill()) continue;
      // The queue ran dry: play out the filter's tail (all fed input now counts as played),
      // then wait for more within the grace period.
      this.pending = this.resampler.flush();
      this.pendingRead = 0;
      this.uncounted = 0;
      this.played = this.runBase + this.runInput;
      this.runBase = this.played;
      this.runInput = 0;
      this.runOutputs = 0;
      this.state = "waiting";
      this.waited = 0;
    }
    out.fill(0, filled);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (this.state === "waiting" && filled < frames) {
      this.waited += frames - filled;
      if (this.waited >= this.graceFrames) {
        this.state = "idle";
        this.port.postMessage({ event: "ended" });
      }
    }
    this.prune();
    return true;
  }
}

registerProcessor("realtime-stream-processor", StreamProcessor);
