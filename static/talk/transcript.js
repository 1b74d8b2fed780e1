// The live transcript: both sides in conversation order, filled in as deltas arrive.
//
// The assistant's words are revealed in step with what has been played: each transcript
// delta (one per spoken sentence, sent just before its audio) is pinned to the audio position
// it starts at, and shown once playback reaches it. When the user interrupts, the entry keeps
// only what was heard (trimmed locally by the played duration, then replaced by the server's
// own truncated transcript) and is marked as interrupted.

const CJK = /[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]/;

/**
 * The part of `text` spoken in `share` (0..1) of its audio, in whole words, the way the
 * server cuts a truncated item (apps/realtime/session/conversation.py, Spoken.heard).
 * @param {string} text
 * @param {number} share
 * @returns {string}
 */
export function heardShare(text, share) {
  if (share >= 1) return text;
  if (share <= 0) return "";
  const body = text.replace(/^\s+/, "");
  const lead = text.slice(0, text.length - body.length);
  let cut = Math.floor(body.length * share);
  if (body.includes(" ")) {
    const space = body.lastIndexOf(" ", cut);
    cut = space > 0 ? space : 0;
  }
  const kept = body.slice(0, cut).replace(/\s+$/, "");
  return kept ? lead + kept : "";
}

/** One entry of the transcript. */
class Entry {
  constructor(id, role, name) {
    this.id = id;
    this.role = role;
    this.name = name;
    this.status = "live"; // live | done | interrupted | failed
    this.segments = []; // assistant: [{text, at}] (at: audio offset the text starts at, or null)
    this.revealed = 0; // assistant: how many segments are shown
    this.text = "";
    this.latencyMs = null;
    this.el = null;
  }
}

/** The transcript list and its DOM. */
export class Transcript {
  /**
   * @param {HTMLElement} list the <ol> that holds the entries
   * @param {{assistantName: string, onChange?: () => void}} options
   */
  constructor(list, options) {
    this.list = list;
    this.assistantName = options.assistantName;
    this.onChange = options.onChange || (() => {});
    this.entries = new Map();
    this.order = [];
  }

  /** Entries as plain objects (for the page's test hook). */
  snapshot() {
    return this.order.map((e) => ({
      id: e.id,
      role: e.role,
      text: e.text,
      status: e.status,
      interrupted: e.status === "interrupted",
      latencyMs: e.latencyMs,
    }));
  }

  has(id) {
    return this.entries.has(id);
  }

  /**
   * Add an entry (no-op if it exists); entries keep the order they were first seen in.
   * @param {string} id the conversation item id
   * @param {"user"|"assistant"} role
   * @param {{text?: string, pending?: boolean}} [options]
   */
  add(id, role, options = {}) {
    let entry = this.entries.get(id);
    if (entry) return entry;
    entry = new Entry(id, role, role === "user" ? "You" : this.assistantName);
    entry.text = options.text || "";
    if (options.text) entry.status = "done";
    this.entries.set(id, entry);
    this.order.push(entry);
    this.render(entry);
    return entry;
  }

  /** Remove an entry (a user turn that turned out to hold no speech). */
  remove(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.order = this.order.filter((e) => e !== entry);
    entry.el.remove();
    this.onChange();
  }

  /** Append a delta of the user's transcript. */
  userDelta(id, delta) {
    const entry = this.add(id, "user");
    entry.text += delta;
    this.render(entry);
  }

  /** The user's final transcript. */
  userDone(id, transcript) {
    const entry = this.add(id, "user");
    entry.text = transcript;
    entry.status = "done";
    this.render(entry);
  }

  /** The user's audio could not be transcribed. */
  userFailed(id) {
    const entry = this.add(id, "user");
    entry.status = "failed";
    this.render(entry);
  }

  /**
   * A piece of the assistant's transcript.
   * @param {string} id
   * @param {string} text
   * @param {number|null} at the audio offset it starts at (null: show it now)
   */
  assistantDelta(id, text, at) {
    const entry = this.add(id, "assistant");
    entry.segments.push({ text, at });
    if (at === null) this.reveal(id, Infinity);
    else this.render(entry);
  }

  /**
   * Show the assistant's words whose audio has started playing.
   * @param {string} id
   * @param {number} played audio offset played so far (Infinity: everything)
   */
  reveal(id, played) {
    const entry = this.entries.get(id);
    if (!entry || entry.status === "interrupted") return;
    let n = entry.revealed;
    while (n < entry.segments.length) {
      const at = entry.segments[n].at;
      if (at !== null && at > played) break;
      n++;
    }
    if (n === entry.revealed) return;
    entry.revealed = n;
    entry.text = entry.segments
      .slice(0, n)
      .map((s) => s.text)
      .join("");
    this.render(entry);
  }

  /** All of the assistant's audio has been played (or it had none). */
  assistantDone(id) {
    const entry = this.entries.get(id);
    if (!entry || entry.status === "interrupted") return;
    this.reveal(id, Infinity);
    entry.status = "done";
    this.render(entry);
  }

  /**
   * The user cut the assistant off: keep only what was heard.
   * @param {string} id
   * @param {number|null} played audio offset heard (null: keep what is shown)
   * @param {number} total the audio offset the last segment ends at (what was received)
   */
  assistantInterrupted(id, played, total) {
    const entry = this.entries.get(id);
    if (!entry) return;
    if (played !== null) {
      let text = "";
      entry.segments.forEach((s, i) => {
        if (s.at === null) {
          text += s.text;
          return;
        }
        const end = i + 1 < entry.segments.length ? entry.segments[i + 1].at : total;
        const share = end > s.at ? (played - s.at) / (end - s.at) : played >= s.at ? 1 : 0;
        text += heardShare(s.text, share);
      });
      entry.text = text;
    }
    entry.status = "interrupted";
    this.render(entry);
  }

  /** Replace an assistant entry's text with the server's (truncated) transcript. */
  assistantText(id, text) {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.text = text;
    this.render(entry);
  }

  /** Show a turn's latency on its assistant entry. */
  latency(id, ms) {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.latencyMs = ms;
    this.render(entry);
  }

  /** Mark every live entry done (the connection ended). */
  settle() {
    for (const entry of this.order) {
      if (entry.status === "live") {
        if (entry.role === "assistant" && entry.revealed < entry.segments.length) {
          entry.status = "interrupted";
        } else if (entry.role === "user" && !entry.text) {
          this.remove(entry.id);
          continue;
        } else {
          entry.status = "done";
        }
        this.render(entry);
      }
    }
  }

  render(entry) {
    const nearBottom =
      this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 48;
    if (!entry.el) {
      const li = document.createElement("li");
      li.className = `msg msg--${entry.role}`;
      li.dataset.itemId = entry.id;
      const meta = document.createElement("div");
      meta.className = "msg__meta";
      const who = document.createElement("span");
      who.className = "msg__who";
      who.textContent = entry.name;
      meta.append(who);
      const badge = document.createElement("span");
      badge.className = "msg__badge";
      badge.hidden = true;
      const latency = document.createElement("span");
      latency.className = "msg__latency";
      latency.hidden = true;
      meta.append(badge, latency);
      const text = document.createElement("p");
      text.className = "msg__text";
      li.append(meta, text);
      entry.el = li;
      this.list.append(li);
    }
    const li = entry.el;
    li.dataset.status = entry.status;
    // Screen readers hear an entry once it is complete, not every delta.
    li.setAttribute("aria-busy", entry.status === "live" ? "true" : "false");
    const [badge, latency] = li.querySelectorAll(".msg__badge, .msg__latency");
    const textEl = li.querySelector(".msg__text");
    if (entry.text) {
      textEl.textContent = entry.text;
      textEl.classList.remove("msg__text--pending");
    } else {
      textEl.textContent =
        entry.status === "failed"
          ? "(could not be transcribed)"
          : entry.status === "interrupted"
            ? "(interrupted before any words)"
            : entry.status === "done"
              ? "(no words recognized)"
              : "…";
      textEl.classList.add("msg__text--pending");
    }
    if (CJK.test(entry.text)) textEl.lang = "zh";
    else textEl.removeAttribute("lang");
    badge.hidden = entry.status !== "interrupted";
    badge.textContent = entry.status === "interrupted" ? "Interrupted" : "";
    latency.hidden = entry.latencyMs === null;
    if (entry.latencyMs !== null) {
      latency.textContent = `replied in ${(entry.latencyMs / 1000).toFixed(2)} s`;
    }
    if (nearBottom) this.list.scrollTop = this.list.scrollHeight;
    this.onChange();
  }
}
