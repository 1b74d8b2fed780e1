// What went wrong, in words a user can act on. Every failure of the talk page becomes a
// TalkError with one of the codes below; the page shows its title, text and action.

/** @typedef {"retry"|"reconnect"|"key"} TalkAction */

const MESSAGES = {
  mic_denied: {
    title: "Microphone access is blocked",
    text: "Allow this site to use your microphone (the microphone or lock icon next to the address), then try again.",
    action: "retry",
  },
  mic_missing: {
    title: "No microphone found",
    text: "Connect a microphone or headset, then try again.",
    action: "retry",
  },
  mic_busy: {
    title: "The microphone is in use",
    text: "Another application is using your microphone. Close it, then try again.",
    action: "retry",
  },
  bad_key: {
    title: "The key was not accepted",
    text: "The license key is wrong, revoked or disabled. Check it and try again.",
    action: "retry",
  },
  expired_key: {
    title: "The key has expired",
    text: "Your access key expired. Try again to get a fresh one.",
    action: "retry",
  },
  need_key: {
    title: "A license key is needed",
    text: "This site has no key set up for talking. Paste a license key to start; it stays in this tab's memory only.",
    action: "key",
  },
  not_allowed: {
    title: "This site may not use that key",
    text: "The key does not allow this website or user. Ask the operator to allow it.",
    action: "retry",
  },
  character_not_found: {
    title: "This character is not available",
    text: "It may have been removed. Go back and pick another one.",
    action: "retry",
  },
  rate_limited: {
    title: "Too many attempts",
    text: "Wait a minute, then try again.",
    action: "retry",
  },
  quota: {
    title: "The audio quota is used up",
    text: "This key has used its monthly audio minutes.",
    action: "retry",
  },
  busy: {
    title: "The server is busy",
    text: "Too many conversations are going on right now. Try again in a moment.",
    action: "retry",
  },
  unreachable: {
    title: "Cannot reach the server",
    text: "Check your connection, then try again.",
    action: "retry",
  },
  lost: {
    title: "The connection to the server was lost",
    text: "Your conversation so far is kept. Reconnect to carry on.",
    action: "reconnect",
  },
  session_expired: {
    title: "The conversation reached its time limit",
    text: "Reconnect to carry on where you left off.",
    action: "reconnect",
  },
  media_failed: {
    title: "Could not set up audio",
    text: "The browser could not connect the call. Try again, or switch the connection to WebSocket.",
    action: "retry",
  },
  server_error: {
    title: "Something went wrong on the server",
    text: "Reconnect to carry on.",
    action: "reconnect",
  },
};

/** An error the talk page shows to the user. */
export class TalkError extends Error {
  /**
   * @param {string} code one of the keys of MESSAGES
   * @param {string} [detail] technical detail (shown in small print)
   * @param {string} [serverCode] the server's error code, when there was one
   */
  constructor(code, detail = "", serverCode = null) {
    const info = MESSAGES[code] || MESSAGES.server_error;
    super(info.title);
    this.code = MESSAGES[code] ? code : "server_error";
    this.title = info.title;
    this.text = info.text;
    this.action = info.action;
    this.detail = detail;
    this.serverCode = serverCode;
  }
}

/**
 * A TalkError for a getUserMedia failure.
 * @param {DOMException|Error} error
 * @returns {TalkError}
 */
export function micError(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return new TalkError("mic_denied", error.message);
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return new TalkError("mic_missing", error.message);
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return new TalkError("mic_busy", error.message);
  }
  return new TalkError("mic_missing", String((error && error.message) || error));
}

/**
 * A TalkError for an error the server reported (HTTP body or `error` event).
 * @param {{code?: string|null, message?: string, type?: string}|null} error
 * @param {number} [status] HTTP status, when it came from a response
 * @returns {TalkError}
 */
export function serverError(error, status = 0) {
  const code = (error && error.code) || "";
  const message = (error && error.message) || "";
  const say = (kind) => new TalkError(kind, message, code || String(status));
  if (code === "talk_page_not_configured") return say("need_key");
  if (code === "invalid_api_key" || code === "missing_api_key" || status === 401) {
    return say(/expired/i.test(message) ? "expired_key" : "bad_key");
  }
  if (code === "expired" || code === "client_secret_expired") return say("expired_key");
  if (
    code === "origin_not_allowed" ||
    code === "host_not_allowed" ||
    code === "user_mismatch" ||
    code === "insufficient_permissions" ||
    status === 403
  ) {
    return say("not_allowed");
  }
  if (code === "character_not_found" || code === "model_not_found") return say("character_not_found");
  if (code === "rate_limit_exceeded") return say("rate_limited");
  if (code === "insufficient_quota") return say("quota");
  if (code === "server_shutting_down") return say("lost"); // it went away: reconnect
  if (code === "too_many_sessions" || code === "server_busy" || status === 503) return say("busy");
  if (code === "session_expired") return say("session_expired");
  return say("server_error");
}

/** Error codes after which the session cannot go on (the server closes it). */
export const FATAL_CODES = new Set([
  "invalid_api_key",
  "missing_api_key",
  "origin_not_allowed",
  "host_not_allowed",
  "user_mismatch",
  "character_not_found",
  "model_not_found",
  "too_many_sessions",
  "insufficient_quota",
  "rate_limit_exceeded",
  "session_expired",
  "server_busy",
  "server_shutting_down",
  "server_error",
]);
