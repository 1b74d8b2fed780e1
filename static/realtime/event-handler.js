// A small event emitter with one-shot handlers and promise-based waiting, the shape the
// Realtime reference client exposes (on / off / onNext / offNext / waitForNext / dispatch).

/**
 * @callback EventCallback
 * @param {any} event
 * @returns {any}
 */

/** Event emitter base class of RealtimeAPI and RealtimeClient. */
export class RealtimeEventHandler {
  constructor() {
    /** @type {Map<string, EventCallback[]>} */
    this._handlers = new Map();
    /** @type {Map<string, EventCallback[]>} */
    this._nextHandlers = new Map();
  }

  /** Remove every handler of every event. */
  clearEventHandlers() {
    this._handlers.clear();
    this._nextHandlers.clear();
    return true;
  }

  /**
   * Call `callback` for every `eventName` event.
   * @param {string} eventName
   * @param {EventCallback} callback
   * @returns {EventCallback} the callback, to pass to `off`
   */
  on(eventName, callback) {
    const list = this._handlers.get(eventName) ?? [];
    list.push(callback);
    this._handlers.set(eventName, list);
    return callback;
  }

  /**
   * Call `callback` for the next `eventName` event only.
   * @param {string} eventName
   * @param {EventCallback} callback
   * @returns {EventCallback}
   */
  onNext(eventName, callback) {
    const list = this._nextHandlers.get(eventName) ?? [];
    list.push(callback);
    this._nextHandlers.set(eventName, list);
    return callback;
  }

  /**
   * Stop calling `callback` (or every handler of the event when no callback is given).
   * @param {string} eventName
   * @param {EventCallback} [callback]
   */
  off(eventName, callback) {
    removeHandler(this._handlers, eventName, callback);
    return true;
  }

  /**
   * Remove a one-shot handler added with `onNext`.
   * @param {string} eventName
   * @param {EventCallback} [callback]
   */
  offNext(eventName, callback) {
    removeHandler(this._nextHandlers, eventName, callback);
    return true;
  }

  /**
   * Wait for the next `eventName` event.
   * @param {string} eventName
   * @param {number|null} [timeout=null] milliseconds; null waits for ever
   * @returns {Promise<any|null>} the event, or null when the timeout passed first
   */
  waitForNext(eventName, timeout = null) {
    return new Promise((resolve) => {
      let timer = null;
      const handler = this.onNext(eventName, (event) => {
        if (timer !== null) clearTimeout(timer);
        resolve(event);
      });
      if (timeout !== null) {
        timer = setTimeout(() => {
          this.offNext(eventName, handler);
          resolve(null);
        }, timeout);
      }
    });
  }

  /**
   * Call the handlers of `eventName` with `event`. A throwing (or rejecting) handler is
   * reported on the console and does not stop the others: one broken UI callback must not
   * stall the conversation's bookkeeping.
   * @param {string} eventName
   * @param {any} event
   */
  dispatch(eventName, event) {
    const handlers = [...(this._handlers.get(eventName) ?? [])];
    const once = this._nextHandlers.get(eventName) ?? [];
    this._nextHandlers.delete(eventName);
    for (const handler of [...handlers, ...once]) {
      try {
        const result = handler(event);
        if (result && typeof result.catch === "function") {
          result.catch((error) => console.error(`"${eventName}" handler failed`, error));
        }
      } catch (error) {
        console.error(`"${eventName}" handler failed`, error);
      }
    }
    return true;
  }
}

function removeHandler(map, eventName, callback) {
  if (!callback) {
    map.delete(eventName);
    return;
  }
  const list = map.get(eventName);
  if (!list) return;
  const index = list.indexOf(callback);
  if (index === -1) throw new Error(`Could not turn off the given callback for "${eventName}"`);
  list.splice(index, 1);
}
