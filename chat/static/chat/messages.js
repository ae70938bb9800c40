// The message list: building message elements from the page's <template>s, the text of
// a reply as it streams (tracked in code points, as the server counts offsets), and the
// final sanitized HTML. Streamed model text only ever goes in through textContent.
import { config, t } from "./config.js";

const list = document.getElementById("messages");
const replies = new WeakMap(); // element -> { text, known } (known: code points, or null)
const PENDING = new Set(["queued", "streaming"]);

export const codePoints = (text) => Array.from(text).length;

export function findMessage(id) {
  return list.querySelector(`.msg[data-id="${CSS.escape(String(id))}"]`);
}

export function pendingMessages() {
  return [...list.querySelectorAll(".msg[data-role=assistant]")].filter((el) =>
    PENDING.has(el.dataset.status),
  );
}

export function isPending(el) {
  return PENDING.has(el.dataset.status);
}

/** Show `when` (a Date) in the reader's time zone; the full date on hover. */
function showTime(time, when) {
  const lang = document.documentElement.lang || undefined;
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  time.title = when.toLocaleString(lang, { dateStyle: "full", timeStyle: "short" });
}

/** The server writes message times in UTC: show them in the reader's time zone. */
export function localizeTimes(root) {
  for (const time of root.querySelectorAll("time.msg-time[datetime]")) {
    showTime(time, new Date(time.getAttribute("datetime")));
  }
}

/** Append a new message of `role` with plain `text`; returns its element. */
export function appendMessage(role, text = "", createdAt = new Date()) {
  document.getElementById("empty-chat")?.remove();
  const el = document.getElementById(`tpl-${role}`).content.firstElementChild.cloneNode(true);
  el.querySelector(".msg-body").textContent = text;
  showTime(el.querySelector(".msg-time"), createdAt);
  list.append(el);
  scrollToEnd(true);
  return el;
}

export function bindMessage(el, id) {
  el.dataset.id = String(id);
}

function stateOf(el) {
  let state = replies.get(el);
  if (!state) {
    const body = el.querySelector(".msg-body");
    // Rendered markdown no longer holds the raw text: its length is unknown until a
    // snapshot says it.
    const plain = body.classList.contains("plain");
    state = plain ? { text: body.textContent, known: codePoints(body.textContent) } : null;
    state ??= { text: "", known: null };
    replies.set(el, state);
  }
  return state;
}

function showPlain(el, text) {
  const body = el.querySelector(".msg-body");
  body.className = "msg-body plain";
  body.textContent = text;
}

/** Forget what the element showed: a regenerated reply starts again from offset 0. */
export function resetReply(el) {
  replies.set(el, { text: "", known: 0 });
  showPlain(el, "");
  el.querySelector(".msg-error").hidden = true;
  setMetrics(el, "");
}

/** Apply a `token` frame; returns false when it starts past what we have (a gap). */
export function applyToken(el, offset, text) {
  const state = stateOf(el);
  if (state.known === null && offset === 0) Object.assign(state, { text: "", known: 0 });
  if (state.known === null || offset > state.known) return false;
  const fresh = Array.from(text).slice(state.known - offset);
  if (fresh.length === 0) return true; // already had it (a frame repeated after a snapshot)
  const added = fresh.join("");
  const body = el.querySelector(".msg-body");
  if (body.classList.contains("plain")) body.append(added);
  else showPlain(el, state.text + added);
  state.text += added;
  state.known += fresh.length;
  scrollToEnd(false);
  return true;
}

/** Apply a `rewind` frame: keep the first `offset` code points of the answer. */
export function truncateReply(el, offset) {
  const state = stateOf(el);
  if (state.known === null || state.known <= offset) return;
  applySnapshot(el, Array.from(state.text).slice(0, offset).join(""));
}

/** Apply a `snapshot` frame: the whole text so far replaces what we had. */
export function applySnapshot(el, content) {
  replies.set(el, { text: content, known: codePoints(content) });
  showPlain(el, content);
  scrollToEnd(false);
}

/** Apply an `end` frame: the server's sanitized HTML replaces the streamed text. */
export function finishReply(el, frame) {
  const content = frame.content ?? stateOf(el).text;
  replies.set(el, { text: content, known: codePoints(content) });
  const body = el.querySelector(".msg-body");
  if (typeof frame.html === "string") {
    body.className = "msg-body markdown";
    body.innerHTML = frame.html; // sanitized by nh3 on the server (chat.rendering)
    enhanceCodeBlocks(body);
  } else {
    showPlain(el, content);
  }
  el.dataset.status = frame.status || "complete";
  el.dataset.finishReason = frame.finish_reason || "";
  scrollToEnd(false);
}

export function setStatus(el, status, label = "") {
  el.dataset.status = status;
  el.querySelector(".msg-state").textContent = label;
}

export function showError(el, text) {
  const box = el.querySelector(".msg-error");
  box.textContent = text;
  box.hidden = false;
}

export function setMetrics(el, label) {
  const span = el.querySelector(".msg-metrics");
  if (!span) return;
  span.textContent = label;
  span.title = label;
}

/** The hover line for a reply, in words: first word, speed, length (as the server
 * writes it, chat/views.py); the intent for staff only. */
export function metricsLabel(metrics = {}, intent = "", source = "") {
  const parts = [];
  if (metrics.ttft_ms != null) {
    parts.push(t("m_ttft", { seconds: (metrics.ttft_ms / 1000).toFixed(1) }));
  }
  if (metrics.tokens_per_s != null) {
    parts.push(t("m_rate", { rate: Math.round(metrics.tokens_per_s) }));
  }
  if (metrics.completion_tokens != null) {
    parts.push(t("m_tokens", { count: metrics.completion_tokens }));
  }
  if (intent && config.isStaff) parts.push(t("m_intent", { intent, source: source || "?" }));
  return parts.join(" · ");
}

/** Raw text of a message for the clipboard or the edit box. */
export function messageText(el) {
  const state = replies.get(el);
  if (state && state.known !== null) return state.text;
  const body = el.querySelector(".msg-body").cloneNode(true);
  for (const button of body.querySelectorAll(".code-copy")) button.remove();
  return body.textContent;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = Object.assign(document.createElement("textarea"), { value: text });
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

async function flashCopied(button, text) {
  const label = button.textContent;
  if (await copyText(text)) {
    button.textContent = t("copied");
    setTimeout(() => (button.textContent = label), 1200);
  }
}

/** Give every code block under `root` a Copy button. */
export function enhanceCodeBlocks(root) {
  for (const pre of root.querySelectorAll("pre")) {
    if (pre.querySelector(".code-copy")) continue;
    const code = pre.querySelector("code") ?? pre;
    const button = Object.assign(document.createElement("button"), {
      type: "button",
      className: "btn btn-small code-copy",
      textContent: t("copy"),
    });
    button.addEventListener("click", () => flashCopied(button, code.textContent));
    pre.append(button);
  }
}

export function copyReply(el, button) {
  return flashCopied(button, messageText(el));
}

let stickToBottom = true;
const toBottom = document.getElementById("to-bottom");
list.addEventListener("scroll", () => {
  stickToBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  toBottom.hidden = stickToBottom;
});
toBottom.addEventListener("click", () => scrollToEnd(true));

/** Keep the newest text in view, unless the reader scrolled up (or `force`). */
export function scrollToEnd(force) {
  if (force || stickToBottom) list.scrollTop = list.scrollHeight;
}

/** The last reply shown (on a conversation's latest page, its last reply). */
export function lastReply() {
  const replies = list.querySelectorAll(".msg[data-role=assistant]");
  return replies[replies.length - 1] ?? null;
}
