// The seed-002 demo: xStar's "complete example" (RealtimeClient + WavRecorder + WavStreamPlayer)
// run against this server. The block between the two "seed example" markers is the seed's code
// as published, with only the URL changed (and userId, see there); everything around it is
// the glue a page needs: where the key comes from, the React-style setters the example calls
// (setItems, setIsBotSpeaking, isConnectedRef), the Connect button, and error messages.

import { RealtimeClient } from "../realtime/client.js";
import { WavRecorder, WavStreamPlayer } from "../realtime/wavtools.js";

const config = JSON.parse(document.getElementById("demo-config").textContent);
const ui = {
  button: document.getElementById("demo-connect"),
  status: document.getElementById("demo-status"),
  statusText: document.getElementById("demo-status-text"),
  error: document.getElementById("demo-error"),
  items: document.getElementById("demo-items"),
  empty: document.getElementById("demo-empty"),
};

// --- glue: the key ----------------------------------------------------------------------------
// The seed reads a long-lived key from .env. A page must never hold one, so `apiKey` is a
// function: RealtimeClient calls it on every connect(), and it mints a ~60 s ephemeral secret
// from this site (POST /talk/secret), bound to this visitor's user id.
async function apiKey() {
  let response;
  try {
    response = await fetch(config.secretUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
  } catch {
    throw demoError("The server cannot be reached. Check your connection and try again.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = body?.error?.code;
    if (code === "talk_page_not_configured") {
      throw demoError("This site has no key for the demo page yet: an operator must tick “serves the talk page” on a license in the admin.");
    }
    if (code === "rate_limit_exceeded") throw demoError("Too many connection attempts. Wait a few seconds and try again.");
    throw demoError(body?.error?.message ?? `The server refused a key (${response.status}).`);
  }
  return body.value;
}

// --- glue: what the example's React component provided -----------------------------------------
const isConnectedRef = { current: false };

function setIsBotSpeaking(speaking) {
  document.body.dataset.botSpeaking = String(speaking);
  if (speaking) document.body.dataset.botSpoke = String(Number(document.body.dataset.botSpoke ?? 0) + 1);
  if (isConnectedRef.current) setStatus(speaking ? "speaking" : "listening");
}

const rendered = new Map(); // item id -> {li, who, text, audio, url}

function setItems(items) {
  const alive = new Set(items.map((item) => item.id));
  for (const [id, view] of rendered) {
    if (alive.has(id)) continue;
    view.li.remove();
    if (view.url) URL.revokeObjectURL(view.url);
    rendered.delete(id);
  }
  let previous = null;
  for (const item of items) {
    const view = rendered.get(item.id) ?? createItemView(item);
    updateItemView(view, item);
    const anchor = previous ? previous.nextSibling : ui.items.firstChild;
    if (view.li !== anchor) ui.items.insertBefore(view.li, anchor);
    previous = view.li;
  }
  ui.empty.hidden = items.length > 0;
  ui.items.lastElementChild?.scrollIntoView({ block: "nearest" });
}

function createItemView(item) {
  const li = document.createElement("li");
  li.dataset.itemId = item.id;
  const who = document.createElement("span");
  who.className = "who";
  const text = document.createElement("p");
  li.append(who, text);
  const view = { li, who, text, audio: null, url: null };
  rendered.set(item.id, view);
  return view;
}

function updateItemView(view, item) {
  const { li, who, text } = view;
  const role = item.type === "message" ? item.role : "tool";
  li.className = `turn ${role}`;
  li.dataset.role = role;
  li.dataset.status = item.status ?? "";
  li.classList.toggle("interrupted", !!item.formatted.truncated || item.status === "incomplete");
  who.textContent = { user: "You", assistant: "Assistant", system: "System" }[role] ?? "Tool";
  const { transcript, text: written, tool, output } = item.formatted;
  let words = (transcript || written || "").trim();
  if (tool) words = `${tool.name}(${tool.arguments})`;
  else if (item.type === "function_call_output") words = `→ ${output}`;
  else if (!words && role === "user" && transcript === " ") words = "(no speech recognised)";
  else if (!words && role === "user") words = "Transcribing…";
  else if (!words) words = "…";
  if (text.textContent !== words) text.textContent = words;
  li.dataset.transcript = (transcript || written || "").trim();
  const file = item.formatted.file;
  if (file?.url && file.url !== view.url) {
    if (!view.audio) {
      view.audio = document.createElement("audio");
      view.audio.controls = true;
      view.audio.preload = "metadata";
      view.audio.className = "demo-audio";
      view.audio.setAttribute("aria-label", `Play ${who.textContent === "You" ? "your" : "the assistant’s"} message`);
      li.append(view.audio);
    }
    view.audio.src = file.url;
    if (view.url) URL.revokeObjectURL(view.url); // the example decodes again on each update
    view.url = file.url;
    li.dataset.audioSeconds = String(file.audioBuffer?.duration ?? 0);
  }
}

const STATUS_TEXT = {
  disconnected: "Disconnected",
  connecting: "Connecting…",
  listening: "Connected · listening",
  speaking: "Assistant speaking · microphone paused",
};

function setStatus(state) {
  ui.status.dataset.state = state;
  ui.statusText.textContent = STATUS_TEXT[state];
}

function demoError(message) {
  const error = new Error(message);
  error.forUser = true;
  return error;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function describe(error) {
  if (error?.forUser) return error.message;
  switch (error?.name) {
    case "NotAllowedError":
      return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar), then press Connect again.";
    case "NotFoundError":
      return "No microphone was found. Plug one in, then press Connect again.";
    case "NotReadableError":
      return "The microphone is in use by another application.";
    default:
      break;
  }
  if (error?.code === "user_mismatch") return "The key belongs to another visitor. Reload the page and try again.";
  if (error?.code === "invalid_api_key") return "The key was refused (it may have expired). Press Connect to try again.";
  return `Could not connect: ${error?.message ?? error}`;
}

// --- seed example (xStar README, "完整示例"): unchanged but for the URL and userId -------------
// 初始化各组件
const wavRecorder = new WavRecorder({ sampleRate: 16000 });
const wavStreamPlayer = new WavStreamPlayer({ sampleRate: 8000 });
const client = new RealtimeClient({
  apiKey: apiKey,
  url: config.realtimeUrl, // the seed's 'wss://api.xstar.city/v1/raltime', here this server
  dangerouslyAllowAPIKeyInBrowser: true,
});
// 播放器事件设置:AI 播放时暂停录音,播放完毕后恢复
wavStreamPlayer.onplay = async () => {
  setIsBotSpeaking(true);
  if(wavRecorder.recording) {
    await wavRecorder.pause();
  }
};
wavStreamPlayer.onended = async () => {
  setIsBotSpeaking(false);
  if(!wavRecorder.recording && isConnectedRef.current)
    await wavRecorder.record((data) => client.appendInputAudio(data.mono));
};
// 客户端事件处理
client.on('error', (event) => console.error(event));
client.on('conversation.interrupted', async () => {
  const trackSampleOffset = await wavStreamPlayer.interrupt();
  if (trackSampleOffset?.trackId) {
    await client.cancelResponse(trackSampleOffset.trackId, trackSampleOffset.offset);
  }
});
client.on('conversation.updated', async ({ item, delta }) => {
  if (delta?.audio) {
    wavStreamPlayer.add16BitPCM(delta.audio, item.id);
  }
  if (item.status === 'completed' && item.formatted.audio?.length) {
    const sampleRate = item.role === 'user' ? 16000 : 8000;
    const wavFile = await WavRecorder.decode(
      item.formatted.audio,
      sampleRate,
      sampleRate
    );
    item.formatted.file = wavFile;
  }
  // 根据最新对话内容更新 UI
  setItems(client.conversation.getItems());
});
// 开始对话:连接 API、更新会话配置、发送首次问候
async function connectConversation() {
  // userId: the seed hard-codes "user123". Here the key is an ephemeral secret minted for this
  // visitor, and the server refuses a session whose userId differs from the one the secret is
  // bound to (4003 user_mismatch) — it also keeps each visitor's history apart — so the
  // visitor's own id is sent instead.
  await client.connect({ model: "qwen-max", userId: config.userId });
  client.updateSession({
    instructions: "请简短而有帮助地回答。", // 非激活内置agent的提示词(不推荐)
    voice: '龙婉',
    turn_detection: { type: 'server_vad' },
    input_audio_format: 'Raw16KHz16BitMonoPcm',
    output_audio_format: 'Raw8KHz16BitMonoPcm',
  });
  client.sendUserMessageContent([{
    type: "input_text",
    text: "你好呀",
  }]);
  // 连接音频设备
  await wavRecorder.begin();
  await wavStreamPlayer.connect();
  // 开始采集录音
  await wavRecorder.record((data) => client.appendInputAudio(data.mono));
}
// 结束对话:断开连接并释放资源
async function disconnectConversation() {
  client.disconnect();
  await wavRecorder.end();
  await wavStreamPlayer.interrupt();
}
// --- end of seed example ------------------------------------------------------------------------

// --- glue: the button, and telling the user what went wrong --------------------------------------
let busy = false;

function setConnected(connected) {
  ui.button.textContent = connected ? "Disconnect" : "Connect";
  ui.button.classList.toggle("primary", !connected);
  ui.button.classList.toggle("danger", connected);
  setStatus(connected ? (wavStreamPlayer.playing ? "speaking" : "listening") : "disconnected");
}

async function connect() {
  showError("");
  setStatus("connecting");
  try {
    await connectConversation();
    isConnectedRef.current = true;
    setConnected(true);
  } catch (error) {
    console.error(error);
    showError(describe(error));
    await teardown();
  }
}

async function teardown() {
  isConnectedRef.current = false;
  try {
    await disconnectConversation();
  } catch (error) {
    console.error(error);
  }
  setConnected(false);
}

ui.button.addEventListener("click", async () => {
  if (busy) return;
  busy = true;
  ui.button.disabled = true;
  try {
    if (isConnectedRef.current) await teardown();
    else await connect();
  } finally {
    busy = false;
    ui.button.disabled = false;
  }
});

client.on("error", (event) => {
  showError(`The server reported an error: ${event.error?.message ?? "unknown error"}`);
});

client.on("close", async (event) => {
  if (!isConnectedRef.current) return;
  const reason = event.reason ? ` (${event.reason})` : "";
  showError(`The connection to the server was lost${reason}. Press Connect to start again.`);
  await teardown();
});

// For poking at from the console (and for the browser tests): the example's three objects.
window.demo = { client, wavRecorder, wavStreamPlayer };

ui.button.disabled = false;
setStatus("disconnected");
document.body.dataset.demoReady = "true";
