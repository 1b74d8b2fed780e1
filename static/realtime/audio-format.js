// Audio format names the server speaks (beta / xStar spellings and GA format objects), and
// decoding of output audio deltas into 16-bit PCM.

/**
 * What the client knows about one format.
 * @typedef {object} FormatInfo
 * @property {"pcm16"|"ulaw"|"alaw"|"mp3"|"opus"|"unknown"} codec
 * @property {number|null} rate samples per second of the decoded PCM (null when unknown)
 * @property {boolean} decodable whether `decodeAudio` turns it into PCM samples
 */

/** Beta and xStar names, as the server's codec lists them (apps/realtime/protocol/codec.py). */
export const AUDIO_FORMATS = Object.freeze({
  pcm16: { codec: "pcm16", rate: 24000 },
  g711_ulaw: { codec: "ulaw", rate: 8000 },
  g711_alaw: { codec: "alaw", rate: 8000 },
  Raw8KHz16BitMonoPcm: { codec: "pcm16", rate: 8000 },
  Raw16KHz16BitMonoPcm: { codec: "pcm16", rate: 16000 },
  Raw24KHz16BitMonoPcm: { codec: "pcm16", rate: 24000 },
  Raw44100Hz16BitMonoPcm: { codec: "pcm16", rate: 44100 },
  MonoMp3: { codec: "mp3", rate: null },
  Audio16KHz16BitMonoOpus: { codec: "opus", rate: 16000 },
  Audio48KHz16BitMonoOpus: { codec: "opus", rate: 48000 },
});

// MP3 frames and raw Opus packets would need a streaming decoder (WebCodecs' AudioDecoder is
// not in every browser, and decodeAudioData wants whole files), so the conversation treats
// those outputs as transcript-only: items keep their text, formatted.audio stays empty.
const DECODABLE = new Set(["pcm16", "ulaw", "alaw"]);

/**
 * Describe a format given by name (`"Raw8KHz16BitMonoPcm"`, `"pcm16"`) or as a GA object
 * (`{type: "audio/pcm", rate: 8000}`).
 * @param {string|object|null|undefined} format
 * @returns {FormatInfo}
 */
export function formatInfo(format) {
  let codec = "unknown";
  let rate = null;
  if (typeof format === "string") {
    const known = AUDIO_FORMATS[format];
    if (known) ({ codec, rate } = known);
  } else if (format && typeof format === "object") {
    switch (format.type) {
      case "audio/pcm":
        codec = "pcm16";
        rate = format.rate ?? 24000;
        break;
      case "audio/pcmu":
        codec = "ulaw";
        rate = 8000;
        break;
      case "audio/pcma":
        codec = "alaw";
        rate = 8000;
        break;
      case "audio/mpeg":
        codec = "mp3";
        break;
      case "audio/opus":
        codec = "opus";
        rate = format.rate ?? 16000;
        break;
      default:
        break;
    }
  } else {
    // Nothing said yet: the Realtime API's default is 24 kHz PCM.
    codec = "pcm16";
    rate = 24000;
  }
  return { codec, rate, decodable: DECODABLE.has(codec) };
}

function ulawToLinear(byte) {
  const u = ~byte & 0xff;
  let t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(byte) {
  const a = byte ^ 0x55;
  let t = (a & 0x0f) << 4;
  const segment = (a & 0x70) >> 4;
  if (segment === 0) t += 8;
  else {
    t += 0x108;
    if (segment > 1) t <<= segment - 1;
  }
  return a & 0x80 ? t : -t;
}

const ULAW = new Int16Array(256).map((_, i) => ulawToLinear(i));
const ALAW = new Int16Array(256).map((_, i) => alawToLinear(i));

/**
 * Decode one audio delta to 16-bit PCM at `info.rate`, or null when the format is not
 * decodable here (MP3, Opus: see above).
 * @param {Uint8Array} bytes
 * @param {FormatInfo} info
 * @returns {Int16Array|null}
 */
export function decodeAudio(bytes, info) {
  switch (info.codec) {
    case "pcm16": {
      const even = bytes.byteLength & ~1;
      // A fresh, aligned copy: callers keep these samples (the item's audio, the player queue).
      const copy = new Uint8Array(even);
      copy.set(bytes.subarray(0, even));
      return new Int16Array(copy.buffer);
    }
    case "ulaw":
      return Int16Array.from(bytes, (b) => ULAW[b]);
    case "alaw":
      return Int16Array.from(bytes, (b) => ALAW[b]);
    default:
      return null;
  }
}
