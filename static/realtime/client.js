// RealtimeClient: the browser client seed 002 (xStar) shows, on the API of OpenAI's
// openai-realtime-api-beta reference client, written for this project as a plain ES module.
// It speaks the beta event names, accepts xStar's audio format names, `userId`, and
// `tts_text` content.
//
//   const client = new RealtimeClient({ url, apiKey, dangerouslyAllowAPIKeyInBrowser: true });
//   client.on("conversation.updated", ({ item, delta }) => { ... });
//   await client.connect({ model: "qwen-max", userId });
//   client.updateSession({ voice: "龙婉", output_audio_format: "Raw8KHz16BitMonoPcm" });
//   client.sendUserMessageContent([{ type: "input_text", text: "你好呀" }]);

import { RealtimeAPI } from "./api.js";
import { RealtimeConversation, InputAudioHistory } from "./conversation.js";
import { RealtimeEventHandler } from "./event-handler.js";
import { arrayBufferToBase64, bytesOf, toInt16 } from "./utils.js";

export { RealtimeAPI } from "./api.js";
export { RealtimeConversation } from "./conversation.js";
export { RealtimeEventHandler } from "./event-handler.js";
export { AUDIO_FORMATS, formatInfo } from "./audio-format.js";

/**
 * Session settings in the beta (flat) shape. Only what the page sets is sent, so the server's
 * own defaults (a character's instructions and voice, a minted secret's transcription) stay
 * in force for everything else. Unknown keys are passed through as given.
 * @typedef {object} SessionConfig
 * @property {string[]} [modalities] `["text", "audio"]` or `["text"]`
 * @property {string} [instructions]
 * @property {string} [voice] a voice name of the server's catalogue, e.g. `龙婉`
 * @property {string} [input_audio_format] `pcm16`, `Raw16KHz16BitMonoPcm`, `g711_ulaw`, …
 * @property {string} [output_audio_format] `pcm16`, `Raw8KHz16BitMonoPcm`, `MonoMp3`, …
 * @property {object|null} [input_audio_transcription] e.g. `{model: "whisper-1"}`
 * @property {object|null} [turn_detection] `{type: "server_vad"}`, or null for manual turns
 * @property {object[]} [tools]
 * @property {string|object} [tool_choice]
 * @property {number} [temperature]
 * @property {number|"inf"} [max_response_output_tokens]
 */

/**
 * A content part of a user message.
 * @typedef {object} ContentPart
 * @property {"input_text"|"input_audio"|"tts_text"} type `tts_text` is spoken verbatim by the
 *   server, without the model (xStar)
 * @property {string} [text] for input_text and tts_text
 * @property {Int16Array|ArrayBuffer|Float32Array|string} [audio] for input_audio (base64 or
 *   samples in the session's input format)
 */

/**
 * A point in the played audio of an assistant item, as `WavStreamPlayer.interrupt()` gives it.
 * @typedef {object} ItemRef
 * @property {import("./conversation.js").ItemType|null} item
 */

const BENIGN_CANCEL_ERRORS = ["response_cancel_not_active"];

/**
 * The realtime client.
 *
 * Events (`client.on(name, handler)`):
 * - `conversation.updated` `{item, delta}`: an item changed; `delta` holds what was added
 *   (`audio` Int16Array, `transcript`, `text` or `arguments`), or is null
 * - `conversation.item.appended` `{item}`, `conversation.item.completed` `{item}`
 * - `conversation.interrupted`: the server heard the user start speaking (stop playback, then
 *   `cancelResponse` with what was played)
 * - `realtime.event` `{time, source: "client"|"server", event}`: every event sent or received
 * - `error`: an `error` event from the server
 * - `close` `{code, reason, wasClean, error}`: the server closed the connection
 */
export class RealtimeClient extends RealtimeEventHandler {
  /**
   * @param {object} [options]
   * @param {string} [options.url] the realtime WebSocket URL (`wss://host/v1/realtime`)
   * @param {import("./api.js").ApiKeySource} [options.apiKey] a key, or a function returning
   *   one: called on every connect(), it can mint a fresh ephemeral secret each time
   * @param {boolean} [options.dangerouslyAllowAPIKeyInBrowser] must be true to use a key in a
   *   browser (use an ephemeral secret there, never a license key)
   * @param {boolean} [options.debug] log events to the console
   * @param {number} [options.maxInputAudioSeconds=300] input audio kept for user items
   */
  constructor({ url, apiKey, dangerouslyAllowAPIKeyInBrowser, debug, maxInputAudioSeconds = 300 } = {}) {
    super();
    this.realtime = new RealtimeAPI({ url, apiKey, dangerouslyAllowAPIKeyInBrowser, debug });
    this.conversation = new RealtimeConversation();
    this._maxInputAudioSeconds = maxInputAudioSeconds;
    this._resetConfig();
    this._addAPIEventHandlers();
  }

  /** The key (or key function) the next connect() uses. */
  get apiKey() {
    return this.realtime.apiKey;
  }

  set apiKey(value) {
    this.realtime.apiKey = value;
  }

  _resetConfig() {
    this.sessionCreated = false;
    /** @type {object|null} the session as the server last described it */
    this.session = null;
    /** @type {SessionConfig} what the page set with updateSession, sent on every connect */
    this.sessionConfig = {};
    /** @type {Record<string, {definition: object, handler: Function}>} */
    this.tools = {};
    this._resetConnectionState();
    return true;
  }

  _resetConnectionState() {
    this.inputAudio = new InputAudioHistory(this._maxInputAudioSeconds);
    this.inputAudio.rate = this.conversation.inputSampleRate;
    this._uncommittedFrom = 0; // absolute input sample index where the open buffer starts
    this._activeResponses = new Set();
    this._quietErrors = new Map(); // event_id -> error codes not worth reporting
  }

  _addAPIEventHandlers() {
    const realtime = this.realtime;
    realtime.on("client.*", (event) => {
      this.dispatch("realtime.event", { time: new Date().toISOString(), source: "client", event });
    });
    realtime.on("server.*", (event) => {
      this.dispatch("realtime.event", { time: new Date().toISOString(), source: "server", event });
    });
    realtime.on("close", (event) => {
      this.sessionCreated = false;
      this._activeResponses.clear();
      this.dispatch("close", event);
    });

    const handle = (event) => this.conversation.processEvent(event, this.inputAudio);
    const handleAndTell = (event) => {
      const result = handle(event);
      if (result.item) this.dispatch("conversation.updated", result);
      return result;
    };

    realtime.on("server.session.created", (event) => {
      this._takeSession(event.session);
      this.sessionCreated = true;
    });
    realtime.on("server.session.updated", (event) => this._takeSession(event.session));
    realtime.on("server.error", (event) => {
      const quiet = this._quietErrors.get(event.event_id);
      if (quiet) {
        this._quietErrors.delete(event.event_id);
        if (quiet.has(event.error?.code)) return; // e.g. the response had already ended
      }
      this.dispatch("error", event);
    });

    realtime.on("server.response.created", (event) => {
      this._activeResponses.add(event.response.id);
      handle(event);
    });
    realtime.on("server.response.done", (event) => {
      this._activeResponses.delete(event.response.id);
      handle(event);
    });
    realtime.on("server.response.output_item.added", handle);
    realtime.on("server.response.content_part.added", handle);
    realtime.on("server.input_audio_buffer.speech_started", (event) => {
      handle(event);
      this.dispatch("conversation.interrupted", event);
    });
    realtime.on("server.input_audio_buffer.speech_stopped", (event) => {
      handle(event);
      // Nothing before this point can belong to a later turn.
      this.inputAudio.dropBefore(Math.floor((event.audio_end_ms * this.inputAudio.rate) / 1000));
    });
    realtime.on("server.input_audio_buffer.committed", () => {
      this._uncommittedFrom = this.inputAudio.end;
    });
    realtime.on("server.input_audio_buffer.cleared", () => {
      this._uncommittedFrom = this.inputAudio.end;
    });
    realtime.on("server.conversation.item.created", (event) => {
      const { item } = handleAndTell(event);
      if (!item) return;
      this.dispatch("conversation.item.appended", { item });
      if (item.status === "completed") this.dispatch("conversation.item.completed", { item });
    });
    realtime.on("server.conversation.item.truncated", (event) => {
      const { item } = handleAndTell(event);
      // The server keeps only the words that were heard; its record of the item has them.
      if (item && this.isConnected()) {
        const sent = this.realtime.send("conversation.item.retrieve", { item_id: item.id });
        this._expectMaybeError(sent, ["item_retrieve_invalid_item_id"]);
      }
    });
    for (const name of [
      "conversation.item.retrieved",
      "conversation.item.deleted",
      "conversation.item.input_audio_transcription.delta",
      "conversation.item.input_audio_transcription.completed",
      "response.audio_transcript.delta",
      "response.audio.delta",
      "response.text.delta",
      "response.function_call_arguments.delta",
    ]) {
      realtime.on(`server.${name}`, handleAndTell);
    }
    realtime.on("server.response.output_item.done", async (event) => {
      const { item } = handleAndTell(event);
      if (!item) return;
      if (item.status === "completed") this.dispatch("conversation.item.completed", { item });
      if (item.formatted.tool) await this._callTool(item.formatted.tool);
    });
  }

  _takeSession(session) {
    if (!session) return;
    this.session = session;
    const inputRate = this.conversation.inputSampleRate;
    this.conversation.setFormats({
      input: session.input_audio_format,
      output: session.output_audio_format,
    });
    if (this.conversation.inputSampleRate !== inputRate) {
      // Kept audio is in the old format's rate: it cannot be sliced by the new one's times.
      this.inputAudio.clear();
      this._uncommittedFrom = 0;
    }
    this.inputAudio.rate = this.conversation.inputSampleRate;
  }

  async _callTool(tool) {
    const registered = this.tools[tool.name];
    if (!registered) return; // a tool the server knows but this page does not: leave it
    let output;
    try {
      output = await registered.handler(JSON.parse(tool.arguments || "{}"));
    } catch (error) {
      output = { error: String(error?.message ?? error) };
    }
    if (!this.isConnected()) return;
    this.realtime.send("conversation.item.create", {
      item: { type: "function_call_output", call_id: tool.call_id, output: JSON.stringify(output) },
    });
    this.createResponse();
  }

  /**
   * Whether the socket is open (the session is usable once `sessionCreated` is true too).
   * @returns {boolean}
   */
  isConnected() {
    return this.realtime.isConnected();
  }

  /** Forget the conversation and the session settings (the socket is left as it is). */
  reset() {
    this.disconnect();
    this.clearEventHandlers();
    this.realtime.clearEventHandlers();
    this._resetConfig();
    this._addAPIEventHandlers();
    return true;
  }

  /**
   * Connect, wait for `session.created`, and send the settings given to updateSession so far.
   * @param {object} [options]
   * @param {string} [options.model] e.g. `qwen-max` or `modelId@provider`
   * @param {string} [options.userId] the end user: separates users' conversation contexts
   * @param {Record<string, string>} [options.params] more query parameters (`characterName`)
   * @param {number} [options.timeout=30000] milliseconds to wait for session.created
   * @returns {Promise<true>}
   * @throws {Error} when the socket cannot open, or the server refuses the session (the error
   *   carries the server's `code`, e.g. `invalid_api_key`, `user_mismatch`)
   */
  async connect({ model, userId, params, timeout = 30000 } = {}) {
    if (this.isConnected()) throw new Error("Already connected, use .disconnect() first");
    this.conversation.clear();
    this._resetConnectionState();
    this.sessionCreated = false;
    const created = this._sessionCreatedOrFailure(timeout);
    try {
      await this.realtime.connect({ model, userId, params });
      await created.promise;
    } catch (error) {
      created.cancel();
      this.realtime.disconnect();
      throw error;
    }
    if (Object.keys(this.sessionConfig).length || Object.keys(this.tools).length) {
      this.updateSession();
    }
    return true;
  }

  // Resolves on session.created; rejects on an error event, a close or the timeout first.
  _sessionCreatedOrFailure(timeout) {
    const realtime = this.realtime;
    let cleanup = () => {};
    const promise = new Promise((resolve, reject) => {
      const onCreated = () => {
        cleanup();
        resolve(true);
      };
      const onError = (event) => {
        cleanup();
        const error = new Error(event.error?.message ?? "The server refused the session");
        error.code = event.error?.code;
        error.event = event;
        reject(error);
      };
      const onClose = (event) => {
        cleanup();
        const error = new Error(`The server closed the connection (${event.code} ${event.reason || ""})`.trim());
        error.code = event.reason || event.code;
        reject(error);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error("No session.created from the server"));
      }, timeout);
      realtime.on("server.session.created", onCreated);
      realtime.on("server.error", onError);
      realtime.on("close", onClose);
      cleanup = () => {
        clearTimeout(timer);
        realtime.off("server.session.created", onCreated);
        realtime.off("server.error", onError);
        realtime.off("close", onClose);
        cleanup = () => {};
      };
    });
    promise.catch(() => {}); // reported through connect()'s own await
    return { promise, cancel: () => cleanup() };
  }

  /**
   * Wait until the server has sent `session.created`.
   * @returns {Promise<true>}
   * @throws {Error} when the connection closes first
   */
  async waitForSessionCreated() {
    if (this.sessionCreated) return true;
    if (!this.isConnected()) throw new Error("Not connected, use .connect() first");
    return this._sessionCreatedOrFailure(24 * 3600 * 1000).promise;
  }

  /**
   * Close the connection and clear the conversation. The session settings are kept for the
   * next connect().
   */
  disconnect() {
    this.sessionCreated = false;
    this._activeResponses?.clear();
    this.realtime.disconnect();
    this.conversation.clear();
    this._resetConnectionState();
    return true;
  }

  /** @returns {string|null} `server_vad`, `semantic_vad`, or null for manual turns */
  getTurnDetectionType() {
    if (this.session && "turn_detection" in this.session) return this.session.turn_detection?.type ?? null;
    if ("turn_detection" in this.sessionConfig) return this.sessionConfig.turn_detection?.type ?? null;
    return null;
  }

  /**
   * Offer a function the model may call; the client runs it and sends its output back.
   * @param {{name: string, description?: string, parameters?: object}} definition
   * @param {(args: object) => any} handler its return value is sent as JSON
   */
  addTool(definition, handler) {
    if (!definition?.name) throw new Error("Missing tool name in definition");
    if (typeof handler !== "function") throw new Error(`Tool "${definition.name}" handler must be a function`);
    this.tools[definition.name] = { definition, handler };
    if (this.isConnected()) this.updateSession();
    return this.tools[definition.name];
  }

  /** @param {string} name */
  removeTool(name) {
    if (!this.tools[name]) throw new Error(`Tool "${name}" does not exist, can not be removed.`);
    delete this.tools[name];
    if (this.isConnected()) this.updateSession();
    return true;
  }

  /**
   * Delete an item of the conversation (the server answers `conversation.item.deleted`, which
   * removes it here too).
   * @param {string} id
   */
  deleteItem(id) {
    this.realtime.send("conversation.item.delete", { item_id: id });
    return true;
  }

  /**
   * Change session settings. They are kept (and sent again on every connect) and, when
   * connected, sent now as `session.update`.
   * @param {SessionConfig} [config]
   */
  updateSession(config = {}) {
    for (const [key, value] of Object.entries(config)) {
      if (value !== undefined) this.sessionConfig[key] = value;
    }
    this.conversation.setFormats({
      input: this.sessionConfig.input_audio_format,
      output: this.sessionConfig.output_audio_format,
    });
    this.inputAudio.rate = this.conversation.inputSampleRate;
    const session = { ...this.sessionConfig };
    const tools = Object.values(this.tools).map(({ definition }) => ({ type: "function", ...definition }));
    if (tools.length || "tools" in session) {
      const given = (session.tools ?? []).filter((tool) => !this.tools[tool.name]);
      session.tools = [...given, ...tools];
    }
    if (this.isConnected()) this.realtime.send("session.update", { session });
    return true;
  }

  /**
   * Add a user message and ask for a response. `input_audio` parts may carry samples; they
   * are base64-encoded here.
   * @param {ContentPart[]} content
   */
  sendUserMessageContent(content = []) {
    if (content.length) {
      const parts = content.map((part) => {
        if (part.type !== "input_audio" || typeof part.audio === "string" || part.audio == null) {
          return { ...part };
        }
        const audio = part.audio instanceof Float32Array ? toInt16(part.audio) : part.audio;
        return { ...part, audio: arrayBufferToBase64(audio) };
      });
      this.realtime.send("conversation.item.create", {
        item: { type: "message", role: "user", content: parts },
      });
    }
    this.createResponse();
    return true;
  }

  /**
   * Append microphone audio to the server's input buffer. Int16Array / ArrayBuffer are sent as
   * they are (16-bit PCM for the PCM input formats; for G.711 or Opus pass encoded bytes as an
   * ArrayBuffer or Uint8Array); a Float32Array is converted to 16-bit PCM first.
   * @param {Int16Array|ArrayBuffer|Float32Array|Uint8Array} data
   */
  appendInputAudio(data) {
    const payload = data instanceof Float32Array ? toInt16(data) : data;
    const bytes = bytesOf(payload);
    if (bytes.byteLength === 0) return true;
    this.realtime.send("input_audio_buffer.append", { audio: arrayBufferToBase64(bytes) });
    if (this.conversation.inputFormat.codec === "pcm16") this.inputAudio.append(toInt16(payload).slice());
    return true;
  }

  /**
   * Ask for a response. Without turn detection, audio appended since the last commit is
   * committed first (and becomes the next user item's `formatted.audio`).
   * @param {object} [response] per-response overrides (`instructions`, `modalities`, …)
   */
  createResponse(response) {
    const pending = this.inputAudio.end - this._uncommittedFrom;
    if (this.getTurnDetectionType() === null && pending > 0) {
      this.realtime.send("input_audio_buffer.commit");
      this.conversation.queueInputAudio(this.inputAudio.slice(this._uncommittedFrom, this.inputAudio.end));
      this._uncommittedFrom = this.inputAudio.end;
    }
    this.realtime.send("response.create", response ? { response } : {});
    return true;
  }

  /**
   * Stop the response, and cut assistant item `id` at `sampleCount` samples of its audio
   * played (`conversation.item.truncate`). The cut point is counted at the session's OUTPUT
   * sample rate (8000 for Raw8KHz16BitMonoPcm, 24000 for pcm16, …), which is the rate of the
   * samples the item's audio deltas carried and a WavStreamPlayer of that rate counts.
   * @param {string} [id] the assistant item; without it only `response.cancel` is sent
   * @param {number} [sampleCount=0]
   * @returns {ItemRef}
   */
  cancelResponse(id, sampleCount = 0) {
    if (!id) {
      this._cancelActiveResponse();
      return { item: null };
    }
    const item = this.conversation.getItem(id);
    if (!item) throw new Error(`Could not find item "${id}"`);
    if (item.type !== "message") throw new Error("Can only cancelResponse messages with type \"message\"");
    if (item.role !== "assistant") throw new Error("Can only cancelResponse messages with role \"assistant\"");
    this._cancelActiveResponse();
    const audioIndex = item.content.findIndex((part) => part.type === "audio");
    if (audioIndex === -1) throw new Error("Could not find audio on item to cancel");
    const rate = this.conversation.outputSampleRate;
    this.realtime.send("conversation.item.truncate", {
      item_id: id,
      content_index: audioIndex,
      audio_end_ms: Math.max(0, Math.floor((sampleCount * 1000) / rate)),
    });
    return { item };
  }

  _cancelActiveResponse() {
    // The server may already have ended it (done, or cancelled by turn detection): its
    // "no active response" answer to this cancel is expected and not reported as an error.
    if (!this._activeResponses.size) return;
    const sent = this.realtime.send("response.cancel");
    this._expectMaybeError(sent, BENIGN_CANCEL_ERRORS);
  }

  // Errors the server may answer `sent` with that mean "already so", not a failure.
  _expectMaybeError(sent, codes) {
    this._quietErrors.set(sent.event_id, new Set(codes));
    // Most of these events succeed and get no error: keep only the recent ones.
    while (this._quietErrors.size > 32) this._quietErrors.delete(this._quietErrors.keys().next().value);
  }

  /**
   * The next item added to the conversation.
   * @returns {Promise<ItemRef>}
   */
  async waitForNextItem() {
    const event = await this.waitForNext("conversation.item.appended");
    return { item: event.item };
  }

  /**
   * The next item that completes.
   * @returns {Promise<ItemRef>}
   */
  async waitForNextCompletedItem() {
    const event = await this.waitForNext("conversation.item.completed");
    return { item: event.item };
  }
}
