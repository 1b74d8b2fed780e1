// A streaming band-limited resampler (windowed sinc), small enough for an AudioWorklet.
//
// Both audio paths need one: the microphone is captured at the AudioContext's own rate
// (Firefox refuses to connect a mic to a context forced to another rate) and must reach the
// server at 16 kHz, and the server's 8/16/24 kHz replies must play in a 44.1/48 kHz context.
// Linear interpolation would alias the mic's 8–24 kHz content into the speech band; a
// windowed-sinc low-pass at the lower rate's Nyquist frequency does not.

const TABLE_STEPS = 64; // kernel samples per input sample
const ROLLOFF = 0.92; // cutoff as a fraction of the lower Nyquist frequency

/** Resamples one channel of a stream, chunk by chunk, keeping state between chunks. */
export class StreamResampler {
  /**
   * @param {number} fromRate input samples per second
   * @param {number} toRate output samples per second
   * @param {number} [zeros=8] zero crossings of the kernel on each side (quality vs cost)
   */
  constructor(fromRate, toRate, zeros = 8) {
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.step = fromRate / toRate; // input samples per output sample
    this.passthrough = fromRate === toRate;
    const cutoff = 0.5 * Math.min(1, toRate / fromRate) * ROLLOFF; // cycles per input sample
    this.half = Math.ceil(zeros / (2 * cutoff)); // kernel half-width, in input samples
    const size = this.half * TABLE_STEPS + 2;
    this.table = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const t = i / TABLE_STEPS;
      const x = 2 * cutoff * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = Math.min(1, t / this.half);
      const blackman = 0.42 + 0.5 * Math.cos(Math.PI * w) + 0.08 * Math.cos(2 * Math.PI * w);
      this.table[i] = sinc * blackman;
    }
    this._out = new Float32Array(1024);
    this.reset();
  }

  /** Start a new stream (history cleared). */
  reset() {
    // `half` samples of silence before the first input, so output 0 sits on input 0.
    this._buf = new Float32Array(Math.max(4096, this.half * 4));
    this._len = this.half;
    this._pos = this.half;
  }

  /**
   * Feed input samples; returns the output samples they complete. The returned array is a
   * view of an internal buffer, valid until the next call.
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    if (this.passthrough) return input;
    this._push(input);
    return this._drain();
  }

  /**
   * End of stream: pad with silence so every output up to the last input is produced, then
   * reset. Only outputs that stand for real input are returned.
   * @returns {Float32Array}
   */
  flush() {
    if (this.passthrough) return new Float32Array(0);
    const remaining = Math.max(0, Math.ceil((this._len - this._pos) / this.step));
    this._push(new Float32Array(this.half + 2));
    const out = this._drain().slice(0, remaining);
    this.reset();
    return out;
  }

  _push(input) {
    if (this._len + input.length > this._buf.length) {
      const grown = new Float32Array(Math.max(this._buf.length * 2, this._len + input.length));
      grown.set(this._buf.subarray(0, this._len));
      this._buf = grown;
    }
    this._buf.set(input, this._len);
    this._len += input.length;
  }

  _drain() {
    const { half, step, table } = this;
    const buf = this._buf;
    const possible = Math.max(0, Math.floor((this._len - half - 1 - this._pos) / step) + 1);
    if (this._out.length < possible) this._out = new Float32Array(possible * 2);
    const out = this._out;
    let n = 0;
    let pos = this._pos;
    while (pos + half + 1 <= this._len && n < possible) {
      const center = Math.floor(pos);
      let sum = 0;
      let weights = 0;
      for (let k = center - half + 1; k <= center + half; k++) {
        const t = Math.abs(k - pos) * TABLE_STEPS;
        const i = t | 0;
        if (i >= table.length - 1) continue;
        const w = table[i] + (table[i + 1] - table[i]) * (t - i);
        sum += buf[k] * w;
        weights += w;
      }
      out[n++] = weights > 0 ? sum / weights : 0;
      pos += step;
    }
    // Keep only the history the next outputs can still reach.
    const drop = Math.max(0, Math.floor(pos) - half);
    if (drop > 0) {
      buf.copyWithin(0, drop, this._len);
      this._len -= drop;
      pos -= drop;
    }
    this._pos = pos;
    return out.subarray(0, n);
  }
}
