// The client's copy of the conversation: items built from server events, with the parts a UI
// wants ready to use in `item.formatted` (audio samples, text, transcript, tool call).

import { decodeAudio, formatInfo } from "./audio-format.js";
import { base64ToBytes, Int16Builder } from "./utils.js";

/**
 * @typedef {object} FormattedTool
 * @property {"function"} type
 * @property {string} name
 * @property {string} call_id
 * @property {string} arguments JSON text, growing as argument deltas arrive
 */

/**
 * @typedef {object} FormattedItem
 * @property {Int16Array} audio the item's audio as 16-bit PCM: an assistant item's at the
 *   session's output rate, a user item's at the input rate (empty for transcript-only formats)
 * @property {string} text text content (input_text, tts_text, assistant text)
 * @property {string} transcript what was said: the user's transcription, the assistant's speech
 * @property {FormattedTool} [tool] a function call
 * @property {string} [output] a function call's output
 * @property {object} [file] left for the page (the seed example stores a decoded WAV here)
 * @property {boolean} [truncated] the assistant was cut off (`conversation.item.truncated`)
 * @property {number} [audio_end_ms] where it was cut
 */

/**
 * A conversation item as the server describes it, plus `formatted`.
 * @typedef {object} ItemType
 * @property {string} id
 * @property {"message"|"function_call"|"function_call_output"} type
 * @property {"user"|"assistant"|"system"} [role]
 * @property {"in_progress"|"completed"|"incomplete"} [status]
 * @property {object[]} [content]
 * @property {FormattedItem} formatted
 */

/**
 * Input audio the client appended, kept so a user item can carry the audio of its own turn.
 * Positions are absolute sample counts since the session started (the server's speech_started
 * / speech_stopped times count from there too); old audio falls off after `maxSeconds`.
 */
export class InputAudioHistory {
  /** @param {number} maxSeconds */
  constructor(maxSeconds = 300) {
    this.maxSeconds = maxSeconds;
    this.rate = 16000;
    this.clear();
  }

  clear() {
    /** @type {Int16Array[]} */
    this._chunks = [];
    this._start = 0; // absolute index of the first kept sample
    this.end = 0; // absolute index after the last appended sample
    this._length = 0;
  }

  /** @param {Int16Array} samples */
  append(samples) {
    if (!samples.length) return;
    this._chunks.push(samples);
    this._length += samples.length;
    this.end += samples.length;
    this.dropBefore(this.end - Math.round(this.maxSeconds * this.rate));
  }

  /**
   * Forget audio before the absolute sample index `index`.
   * @param {number} index
   */
  dropBefore(index) {
    while (this._chunks.length && this._start + this._chunks[0].length <= index) {
      const first = this._chunks.shift();
      this._start += first.length;
      this._length -= first.length;
    }
    if (this._chunks.length && this._start < index) {
      const cut = index - this._start;
      this._chunks[0] = this._chunks[0].subarray(cut);
      this._start = index;
      this._length -= cut;
    }
  }

  /**
   * Samples between two absolute indexes (whatever of it is still kept).
   * @param {number} from
   * @param {number} to
   * @returns {Int16Array}
   */
  slice(from, to) {
    const lo = Math.max(from, this._start);
    const hi = Math.min(to, this.end);
    const out = new Int16Array(Math.max(0, hi - lo));
    let position = this._start;
    let written = 0;
    for (const chunk of this._chunks) {
      const chunkEnd = position + chunk.length;
      if (chunkEnd > lo && position < hi) {
        const part = chunk.subarray(Math.max(0, lo - position), Math.min(chunk.length, hi - position));
        out.set(part, written);
        written += part.length;
      }
      position = chunkEnd;
      if (position >= hi) break;
    }
    return out;
  }

  /**
   * Samples between two times in milliseconds since the session started.
   * @param {number} startMs
   * @param {number} endMs
   */
  sliceMs(startMs, endMs) {
    const perMs = this.rate / 1000;
    return this.slice(Math.floor(startMs * perMs), Math.floor(endMs * perMs));
  }
}

// GA spellings of the events this class handles, so a GA stream is understood too.
const GA_NAMES = {
  "conversation.item.added": "conversation.item.created",
  "response.output_audio.delta": "response.audio.delta",
  "response.output_audio.done": "response.audio.done",
  "response.output_audio_transcript.delta": "response.audio_transcript.delta",
  "response.output_audio_transcript.done": "response.audio_transcript.done",
  "response.output_text.delta": "response.text.delta",
  "response.output_text.done": "response.text.done",
};
const GA_CONTENT = { output_text: "text", output_audio: "audio" };
// User transcript text already passed on as deltas, per item (kept off the item itself).
const streamedTranscripts = new WeakMap();

/** The conversation as the client sees it. RealtimeClient feeds it the server's events. */
export class RealtimeConversation {
  constructor() {
    this.clear();
  }

  /** Forget every item and response (RealtimeClient.disconnect does this). */
  clear() {
    /** @type {Record<string, ItemType>} */
    this.itemLookup = {};
    /** @type {ItemType[]} */
    this.items = [];
    this.responseLookup = {};
    this.responses = [];
    this.queuedSpeechItems = {};
    this.queuedTranscriptItems = {};
    /** @type {Int16Array|null} */
    this.queuedInputAudio = null;
    this.setFormats({});
    return true;
  }

  /**
   * Tell the conversation which audio formats the session uses (names or GA objects).
   * @param {{input?: string|object, output?: string|object}} formats
   */
  setFormats({ input, output }) {
    if (input !== undefined || !this.inputFormat) this.inputFormat = formatInfo(input);
    if (output !== undefined || !this.outputFormat) this.outputFormat = formatInfo(output);
  }

  /** Samples per second of the session's output audio (24000 when not known). */
  get outputSampleRate() {
    return this.outputFormat.rate ?? 24000;
  }

  /** Samples per second of the session's input audio (24000 when not known). */
  get inputSampleRate() {
    return this.inputFormat.rate ?? 24000;
  }

  /**
   * Attach audio the client committed itself (no turn detection) to the next user audio item.
   * @param {Int16Array} audio
   */
  queueInputAudio(audio) {
    this.queuedInputAudio = audio;
    return audio;
  }

  /**
   * Apply one server event.
   * @param {object} event
   * @param {InputAudioHistory} [inputAudio] the client's input audio, for speech_stopped
   * @returns {{item: ItemType|null, delta: object|null}} the item it changed and what was added
   */
  processEvent(event, inputAudio) {
    if (!event || typeof event.type !== "string") throw new Error("Missing event type");
    const type = GA_NAMES[event.type] ?? event.type;
    const processor = this.processors[type];
    if (!processor) return { item: null, delta: null };
    return processor.call(this, event, inputAudio);
  }

  /**
   * @param {string} id
   * @returns {ItemType|null}
   */
  getItem(id) {
    return this.itemLookup[id] ?? null;
  }

  /** @returns {ItemType[]} the items in conversation order (a copy of the list) */
  getItems() {
    return this.items.slice();
  }

  _newItem(raw, previousItemId) {
    const item = { ...raw, content: (raw.content ?? []).map(normaliseContent) };
    const audio = new Int16Builder();
    Object.defineProperty(item, "_audio", { value: audio, writable: true, enumerable: false });
    item.formatted = { audio: audio.view(), text: "", transcript: "" };
    this.itemLookup[item.id] = item;
    const after = previousItemId ? this.items.findIndex((i) => i.id === previousItemId) : -1;
    if (after === -1) this.items.push(item);
    else this.items.splice(after + 1, 0, item);
    return item;
  }

  _appendAudio(item, samples) {
    if (!item._audio) {
      Object.defineProperty(item, "_audio", { value: new Int16Builder(), writable: true, enumerable: false });
      item._audio.append(item.formatted.audio);
    }
    item._audio.append(samples);
    item.formatted.audio = item._audio.view();
  }

  _setAudio(item, samples) {
    const audio = new Int16Builder(samples.length);
    audio.append(samples);
    item._audio = audio;
    item.formatted.audio = audio.view();
  }

  _contentAt(item, index, type) {
    if (!item.content) item.content = [];
    while (item.content.length <= index) item.content.push({ type, text: "", transcript: "" });
    return item.content[index];
  }
}

function normaliseContent(part) {
  return part && GA_CONTENT[part.type] ? { ...part, type: GA_CONTENT[part.type] } : { ...part };
}

RealtimeConversation.prototype.processors = {
  "conversation.item.created"(event) {
    const { item: raw, previous_item_id: previous } = event;
    const existing = this.itemLookup[raw.id];
    if (existing) return { item: existing, delta: null };
    const item = this._newItem(raw, previous);
    const speech = this.queuedSpeechItems[item.id];
    if (speech?.audio) {
      this._setAudio(item, speech.audio);
      delete this.queuedSpeechItems[item.id];
    }
    for (const part of item.content) {
      if (["text", "input_text", "tts_text"].includes(part.type) && part.text) {
        item.formatted.text += part.text;
      }
      if (part.transcript) item.formatted.transcript += part.transcript;
    }
    const queued = this.queuedTranscriptItems[item.id];
    if (queued) {
      item.formatted.transcript = queued.transcript;
      delete this.queuedTranscriptItems[item.id];
    }
    if (item.type === "message") {
      if (item.role === "user" || item.role === "system") {
        item.status = "completed";
        const hasAudio = item.content.some((part) => part.type === "input_audio");
        if (hasAudio && this.queuedInputAudio) {
          this._setAudio(item, this.queuedInputAudio);
          this.queuedInputAudio = null;
        }
      }
    } else if (item.type === "function_call") {
      item.formatted.tool = {
        type: "function",
        name: item.name,
        call_id: item.call_id,
        arguments: item.arguments ?? "",
      };
      item.status = item.status ?? "in_progress";
    } else if (item.type === "function_call_output") {
      item.status = "completed";
      item.formatted.output = item.output;
    }
    return { item, delta: null };
  },

  "conversation.item.retrieved"(event) {
    const raw = event.item;
    const item = this.itemLookup[raw?.id];
    if (!item) return { item: null, delta: null };
    // The server's own record: after a truncation it holds only the words that were heard.
    const content = (raw.content ?? []).map(normaliseContent);
    item.content = content.map((part, index) => {
      const mine = item.content?.[index] ?? {};
      const { audio, ...rest } = part; // audio stays in formatted.audio, decoded
      return { ...mine, ...rest };
    });
    if (raw.status) item.status = raw.status;
    const transcripts = content.map((part) => part.transcript).filter((t) => typeof t === "string");
    if (transcripts.length) item.formatted.transcript = transcripts.join(" ");
    return { item, delta: null };
  },

  "conversation.item.truncated"(event) {
    const { item_id: itemId, audio_end_ms: audioEndMs } = event;
    const item = this.itemLookup[itemId];
    if (!item) return { item: null, delta: null };
    const end = Math.floor((audioEndMs * this.outputSampleRate) / 1000);
    this._setAudio(item, item.formatted.audio.slice(0, end));
    // The event says where, not what was heard: the transcript stays until the server's
    // record of the item (conversation.item.retrieved, which RealtimeClient asks for) replaces
    // it; `truncated` tells a UI the tail was not heard meanwhile.
    item.formatted.truncated = true;
    item.formatted.audio_end_ms = audioEndMs;
    return { item, delta: null };
  },

  "conversation.item.deleted"(event) {
    const item = this.itemLookup[event.item_id];
    if (!item) return { item: null, delta: null };
    delete this.itemLookup[item.id];
    const index = this.items.indexOf(item);
    if (index > -1) this.items.splice(index, 1);
    return { item, delta: null };
  },

  "conversation.item.input_audio_transcription.delta"(event) {
    const { item_id: itemId, content_index: index = 0, delta } = event;
    const item = this.itemLookup[itemId];
    if (!item || !delta) return { item: null, delta: null };
    streamedTranscripts.set(item, (streamedTranscripts.get(item) ?? "") + delta);
    const part = this._contentAt(item, index, "input_audio");
    part.transcript = (part.transcript ?? "") + delta;
    item.formatted.transcript += delta;
    return { item, delta: { transcript: delta } };
  },

  "conversation.item.input_audio_transcription.completed"(event) {
    const { item_id: itemId, content_index: index = 0, transcript } = event;
    // A single space marks "transcribed, nothing said", as the reference client does.
    const formatted = transcript || " ";
    const item = this.itemLookup[itemId];
    if (!item) {
      this.queuedTranscriptItems[itemId] = { transcript: formatted };
      return { item: null, delta: null };
    }
    const streamed = streamedTranscripts.get(item) ?? "";
    streamedTranscripts.delete(item);
    this._contentAt(item, index, "input_audio").transcript = transcript;
    item.formatted.transcript = formatted;
    if (!streamed) return { item, delta: { transcript: formatted } };
    // Deltas already told the UI most of it: pass on only what they did not say (nothing
    // when the final text differs; formatted.transcript holds it).
    const rest = transcript.startsWith(streamed) ? transcript.slice(streamed.length) : "";
    return { item, delta: rest ? { transcript: rest } : null };
  },

  "input_audio_buffer.speech_started"(event) {
    this.queuedSpeechItems[event.item_id] = { audio_start_ms: event.audio_start_ms };
    return { item: null, delta: null };
  },

  "input_audio_buffer.speech_stopped"(event, inputAudio) {
    const speech = this.queuedSpeechItems[event.item_id] ?? { audio_start_ms: 0 };
    this.queuedSpeechItems[event.item_id] = speech;
    speech.audio_end_ms = event.audio_end_ms;
    if (inputAudio) speech.audio = inputAudio.sliceMs(speech.audio_start_ms, speech.audio_end_ms);
    return { item: null, delta: null };
  },

  "response.created"(event) {
    const { response } = event;
    if (!this.responseLookup[response.id]) {
      const copy = { ...response, output: [] };
      this.responseLookup[response.id] = copy;
      this.responses.push(copy);
    }
    return { item: null, delta: null };
  },

  "response.done"(event) {
    const { response } = event;
    const known = this.responseLookup[response.id];
    if (known) Object.assign(known, { ...response, output: known.output });
    return { item: null, delta: null };
  },

  "response.output_item.added"(event) {
    const response = this.responseLookup[event.response_id];
    if (response && !response.output.includes(event.item.id)) response.output.push(event.item.id);
    return { item: null, delta: null };
  },

  "response.output_item.done"(event) {
    const raw = event.item;
    let item = this.itemLookup[raw.id];
    if (!item) item = this.processors["conversation.item.created"].call(this, { item: raw }).item;
    item.status = raw.status;
    if (item.formatted.tool && typeof raw.arguments === "string") {
      item.arguments = raw.arguments;
      item.formatted.tool.arguments = raw.arguments;
    }
    // Text-only responses, or a server that sent no transcript deltas: take the final words.
    if (!item.formatted.transcript && !item.formatted.text) {
      for (const part of (raw.content ?? []).map(normaliseContent)) {
        if (part.transcript) item.formatted.transcript += part.transcript;
        if (part.type === "text" && part.text) item.formatted.text += part.text;
      }
    }
    return { item, delta: null };
  },

  "response.content_part.added"(event) {
    const item = this.itemLookup[event.item_id];
    if (!item) return { item: null, delta: null };
    const part = normaliseContent(event.part);
    if (event.content_index !== undefined && item.content[event.content_index]) {
      item.content[event.content_index] = { ...item.content[event.content_index], ...part };
    } else {
      item.content.push(part);
    }
    return { item, delta: null };
  },

  "response.audio_transcript.delta"(event) {
    const { item_id: itemId, content_index: index = 0, delta } = event;
    const item = this.itemLookup[itemId];
    if (!item) return { item: null, delta: null };
    const part = this._contentAt(item, index, "audio");
    part.transcript = (part.transcript ?? "") + delta;
    item.formatted.transcript += delta;
    return { item, delta: { transcript: delta } };
  },

  "response.audio.delta"(event) {
    const item = this.itemLookup[event.item_id];
    if (!item) return { item: null, delta: null };
    const samples = decodeAudio(base64ToBytes(event.delta), this.outputFormat);
    // Undecodable formats (MP3, Opus) leave the item transcript-only: nothing to report.
    if (!samples) return { item: null, delta: null };
    this._appendAudio(item, samples);
    return { item, delta: { audio: samples } };
  },

  "response.text.delta"(event) {
    const { item_id: itemId, content_index: index = 0, delta } = event;
    const item = this.itemLookup[itemId];
    if (!item) return { item: null, delta: null };
    const part = this._contentAt(item, index, "text");
    part.text = (part.text ?? "") + delta;
    item.formatted.text += delta;
    return { item, delta: { text: delta } };
  },

  "response.function_call_arguments.delta"(event) {
    const item = this.itemLookup[event.item_id];
    if (!item) return { item: null, delta: null };
    item.arguments = (item.arguments ?? "") + event.delta;
    if (item.formatted.tool) item.formatted.tool.arguments += event.delta;
    return { item, delta: { arguments: event.delta } };
  },
};
