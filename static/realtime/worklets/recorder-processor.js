// AudioWorklet of WavRecorder: takes the microphone at the context's own rate, resamples it to
// the rate the page asked for, and posts 16-bit PCM to the main thread in ~20 ms batches
// (mono, and every channel interleaved as "raw").
//
// Messages in:  {event: "start"} | {event: "stop", id}
// Messages out: {event: "chunk", mono: Int16Array, raw: Int16Array, channels}
//               {event: "stopped", id} after the last chunk of a stop

import { StreamResampler } from "./resampler.js";

function toInt16(floats, out, offset, stride) {
  for (let i = 0; i < floats.length; i++) {
    const s = Math.max(-1, Math.min(1, floats[i]));
    out[offset + i * stride] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
}

class RecorderProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const target = options?.processorOptions?.sampleRate ?? sampleRate;
    this.targetRate = target;
    this.recording = false;
    this.batchSamples = Math.max(1, Math.round(target / 50));
    this.mono = new StreamResampler(sampleRate, target);
    this.channels = []; // one resampler per input channel, made when the channel shows up
    this.batch = { mono: [], raw: [], samples: 0, channels: 1 };
    this.port.onmessage = (message) => this.onMessage(message.data);
  }

  onMessage(data) {
    if (data.event === "start") {
      this.recording = true;
    } else if (data.event === "stop") {
      this.recording = false;
      this.post();
      // A new recording starts on fresh filter state, not on the end of the last one.
      this.mono.reset();
      for (const channel of this.channels) channel.reset();
      this.port.postMessage({ event: "stopped", id: data.id });
    }
  }

  post() {
    const { batch } = this;
    if (!batch.samples) return;
    const mono = new Int16Array(batch.samples);
    let at = 0;
    for (const part of batch.mono) {
      mono.set(part, at);
      at += part.length;
    }
    let raw = mono;
    if (batch.channels > 1) {
      raw = new Int16Array(batch.samples * batch.channels);
      at = 0;
      for (const part of batch.raw) {
        raw.set(part, at);
        at += part.length;
      }
    }
    const transfer = raw === mono ? [mono.buffer] : [mono.buffer, raw.buffer];
    this.port.postMessage({ event: "chunk", mono, raw, channels: batch.channels }, transfer);
    this.batch = { mono: [], raw: [], samples: 0, channels: batch.channels };
  }

  process(inputs) {
    if (!this.recording) return true;
    const input = inputs[0] ?? [];
    const frames = input[0]?.length ?? 128;
    const count = Math.max(1, input.length);
    // No connected input yet (or a muted track) still advances time: record silence.
    const channels = input.length ? input : [new Float32Array(frames)];
    const average = new Float32Array(frames);
    for (const channel of channels) {
      for (let i = 0; i < frames; i++) average[i] += channel[i] / count;
    }
    const mono = this.mono.process(average);
    if (!mono.length) return true;
    const monoPcm = new Int16Array(mono.length);
    toInt16(mono, monoPcm, 0, 1);
    if (count !== this.batch.channels) {
      this.post(); // a batch holds one channel layout
      this.batch.channels = count;
    }
    this.batch.mono.push(monoPcm);
    if (count > 1) {
      while (this.channels.length < count) this.channels.push(new StreamResampler(sampleRate, this.targetRate));
      const raw = new Int16Array(mono.length * count);
      channels.forEach((channel, c) => {
        const resampled = this.channels[c].process(channel);
        // Every channel's resampler has seen the same input, so it yields as many samples.
        toInt16(resampled.subarray(0, mono.length), raw, c, count);
      });
      this.batch.raw.push(raw);
    }
    this.batch.samples += mono.length;
    if (this.batch.samples >= this.batchSamples) this.post();
    return true;
  }
}

registerProcessor("realtime-recorder-processor", RecorderProcessor);
