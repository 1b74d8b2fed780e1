// The WebSocket layer: one socket to /v1/realtime, JSON events in and out, each re-dispatched
// as `server.<type>` / `client.<type>` and the wildcards `server.*` / `client.*`.

import { RealtimeEventHandler } from "./event-handler.js";
import { generateId } from "./utils.js";

/**
 * An API key, or a function returning one (or a promise of one). A function is called on
 * every `connect()`, so a page can mint a fresh, short-lived ephemeral secret for each
 * connection instead of holding a long-lived key.
 * @typedef {string|(() => string|Promise<string>)} ApiKeySource
 */

/** The raw socket: connect, send, receive. Most pages use RealtimeClient instead. */
export class RealtimeAPI extends RealtimeEventHandler {
  /**
   * @param {object} [options]
   * @param {string} [options.url] `wss://host/v1/realtime`; a path (`/v1/realtime`) is resolved
   *   against the page's origin
   * @param {ApiKeySource} [options.apiKey]
   * @param {boolean} [options.dangerouslyAllowAPIKeyInBrowser] required to use a key in a
   *   browser: the key is visible to the page's user (use an ephemeral secret there)
   * @param {boolean} [options.debug] log every event to the console
   */
  constructor({ url, apiKey, dangerouslyAllowAPIKeyInBrowser = false, debug = false } = {}) {
    super();
    this.defaultUrl = "wss://api.openai.com/v1/realtime";
    this.url = url || this.defaultUrl;
    this.apiKey = apiKey ?? null;
    this.debug = !!debug;
    this.ws = null;
    if (globalThis.document && this.apiKey && !dangerouslyAllowAPIKeyInBrowser) {
      throw new Error(
        'Can not provide API key in the browser without "dangerouslyAllowAPIKeyInBrowser" set to true',
      );
    }
  }

  /** @returns {boolean} whether the socket is open */
  isConnected() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  log(...args) {
    if (this.debug) console.log(`[Websocket/${new Date().toISOString()}]`, ...args);
  }

  /**
   * Open the socket. The key travels in the `openai-insecure-api-key.` subprotocol (a browser
   * cannot set headers on a WebSocket); `openai-beta.realtime-v1` selects the beta event names
   * this library speaks.
   * @param {object} [options]
   * @param {string} [options.model] appended as `?model=`
   * @param {string} [options.userId] appended as `&userId=`; separates end users' contexts
   * @param {Record<string, string>} [options.params] more query parameters (e.g. characterName)
   * @returns {Promise<true>} once the socket is open
   */
  async connect({ model, userId, params } = {}) {
    if (this.isConnected()) throw new Error("Already connected");
    const key = typeof this.apiKey === "function" ? await this.apiKey() : this.apiKey;
    const target = new URL(this.url, globalThis.location?.href);
    if (target.protocol === "http:") target.protocol = "ws:";
    if (target.protocol === "https:") target.protocol = "wss:";
    if (model) target.searchParams.set("model", model);
    if (userId) target.searchParams.set("userId", userId);
    for (const [name, value] of Object.entries(params ?? {})) {
      if (value !== undefined && value !== null) target.searchParams.set(name, String(value));
    }
    const protocols = ["realtime"];
    if (key) protocols.push(`openai-insecure-api-key.${key}`);
    protocols.push("openai-beta.realtime-v1");

    const ws = new WebSocket(target.toString(), protocols);
    this.ws = ws;
    let open = false;
    // Listeners go on before the socket can open, so not even a server's first event (or an
    // error it sends just before closing) can slip past.
    ws.addEventListener("message", (message) => {
      if (this.ws !== ws || typeof message.data !== "string") return; // JSON text only
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        this.log("dropped a frame that is not JSON");
        return;
      }
      this.receive(event.type, event);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws || !open) return; // disconnect() was asked for, or it never opened
      this.ws = null;
      this.log(`Disconnected from "${this.url}" (${event.code} ${event.reason})`);
      this.dispatch("close", {
        code: event.code,
        reason: event.reason,
        wasClean: event.wasClean,
        error: event.code !== 1000,
      });
    });
    await new Promise((resolve, reject) => {
      const failed = (event) => {
        if (open) return;
        if (this.ws === ws) this.ws = null;
        const code = event?.code ? ` (close code ${event.code})` : "";
        reject(new Error(`Could not connect to "${this.url}"${code}`));
      };
      ws.addEventListener(
        "open",
        () => {
          open = true;
          resolve(true);
        },
        { once: true },
      );
      ws.addEventListener("error", failed, { once: true });
      ws.addEventListener("close", failed, { once: true });
    });
    this.log(`Connected to "${this.url}"`);
    return true;
  }

  /** Close the socket (no `close` event is dispatched for a disconnect the page asked for). */
  disconnect() {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState !== WebSocket.CLOSED && ws.readyState !== WebSocket.CLOSING) {
      ws.close(1000, "client disconnect");
    }
    return true;
  }

  /**
   * Dispatch a server event.
   * @param {string} eventName
   * @param {object} event
   */
  receive(eventName, event) {
    this.log("received:", eventName, event);
    this.dispatch(`server.${eventName}`, event);
    this.dispatch("server.*", event);
    return true;
  }

  /**
   * Send a client event (an `event_id` is added).
   * @param {string} eventName e.g. `session.update`
   * @param {object} [data] the event's other fields
   * @returns {object} the event as sent
   */
  send(eventName, data = {}) {
    if (!this.isConnected()) throw new Error("RealtimeAPI is not connected");
    if (typeof data !== "object" || data === null) throw new Error("data must be an object");
    const event = { event_id: generateId("evt_"), type: eventName, ...data };
    this.dispatch(`client.${eventName}`, event);
    this.dispatch("client.*", event);
    this.log("sent:", eventName, event);
    this.ws.send(JSON.stringify(event));
    return event;
  }
}
