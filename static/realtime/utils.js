// Small helpers shared by the realtime client and the audio tools (plain ES module, no deps).

/**
 * Any of the sample containers the public API accepts.
 * @typedef {Int16Array|Float32Array|ArrayBuffer|Uint8Array} AudioLike
 */

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A random id such as `evt_3nW…` (crypto-random where available).
 * @param {string} prefix
 * @param {number} [length=21] total length, prefix included
 * @returns {string}
 */
export function generateId(prefix, length = 21) {
  const count = Math.max(0, length - prefix.length);
  const bytes = new Uint8Array(count);
  if (globalThis.crypto?.getRandomValues) {
    globalThis.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < count; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  let id = prefix;
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

/**
 * Float samples in [-1, 1] as 16-bit PCM (clipped).
 * @param {Float32Array} floats
 * @returns {Int16Array}
 */
export function floatTo16BitPCM(floats) {
  const out = new Int16Array(floats.length);
  for (let i = 0; i < floats.length; i++) {
    const s = Math.max(-1, Math.min(1, floats[i]));
    out[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
  return out;
}

/**
 * 16-bit PCM as floats in [-1, 1).
 * @param {Int16Array} pcm
 * @returns {Float32Array}
 */
export function int16ToFloat32(pcm) {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 0x8000;
  return out;
}

/**
 * Coerce the accepted audio containers to 16-bit PCM. An ArrayBuffer (or Uint8Array) is read as
 * little-endian 16-bit PCM, as the Realtime API sends and expects it; a trailing odd byte is
 * dropped. Typed arrays are viewed, not copied, when already Int16.
 * @param {AudioLike} data
 * @returns {Int16Array}
 */
export function toInt16(data) {
  if (data instanceof Int16Array) return data;
  if (data instanceof Float32Array) return floatTo16BitPCM(data);
  if (data instanceof ArrayBuffer) return new Int16Array(data, 0, data.byteLength >> 1);
  if (ArrayBuffer.isView(data)) {
    // Int16Array needs an even byte offset: copy the bytes when the view is misaligned.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength & ~1);
    if (bytes.byteOffset % 2 === 0) {
      return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
    }
    return new Int16Array(bytes.slice().buffer);
  }
  throw new TypeError("audio must be an Int16Array, Float32Array, ArrayBuffer or Uint8Array");
}

/**
 * The bytes of a typed array or ArrayBuffer, as a Uint8Array view (no copy).
 * @param {ArrayBuffer|ArrayBufferView} data
 * @returns {Uint8Array}
 */
export function bytesOf(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected an ArrayBuffer or a typed array");
}

/**
 * Base64 of raw bytes (standard alphabet, padded), as input_audio_buffer.append wants it.
 * @param {ArrayBuffer|ArrayBufferView} data
 * @returns {string}
 */
export function arrayBufferToBase64(data) {
  const bytes = bytesOf(data);
  // fromCharCode takes its arguments on the stack: go in slices to stay far below its limit.
  const CHUNK = 0x8000;
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/**
 * Bytes of a base64 string.
 * @param {string} base64
 * @returns {Uint8Array}
 */
export function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * One Int16Array holding `a` then `b`.
 * @param {Int16Array} a
 * @param {Int16Array} b
 * @returns {Int16Array}
 */
export function concatInt16(a, b) {
  const out = new Int16Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * A growable Int16 buffer: appends are amortised O(1), so an item's audio can grow delta by
 * delta for minutes without re-copying everything each time. `view()` is a subarray of the
 * backing store, valid until the next append.
 */
export class Int16Builder {
  constructor(capacity = 0) {
    this._data = new Int16Array(capacity);
    this.length = 0;
  }

  /** @param {Int16Array} samples */
  append(samples) {
    const need = this.length + samples.length;
    if (need > this._data.length) {
      const grown = new Int16Array(Math.max(need, this._data.length * 2, 4096));
      grown.set(this._data.subarray(0, this.length));
      this._data = grown;
    }
    this._data.set(samples, this.length);
    this.length = need;
  }

  /** @returns {Int16Array} */
  view() {
    return this._data.subarray(0, this.length);
  }
}
