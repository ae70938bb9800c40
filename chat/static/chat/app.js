// The chat page controller: the composer, the message actions, and the WebSocket
// protocol of DESIGN.md (queued, start, token, end, error, snapshot; resume on reconnect).
import { api } from "./api.js";
import { config, errorText, t } from "./config.js";
import { enableLanguageSwitch } from "./language.js";
import * as msgs from "./messages.js";
import { initSettings } from "./settings.js";
import { initSidebar, refreshSidebar } from "./sidebar.js";
import { ChatSocket } from "./socket.js";
import { startStatusBadge } from "./status.js";

const input = document.getElementById("input");
const composer = document.getElementById("composer");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const notice = document.getElementById("notice");
const list = document.getElementById("messages");
// Errors about a send that was refused before any reply existed: give the text back.
const REFUSALS = new Set(["busy", "rate_limited", "bad_request", "forbidden"]);

const state = {
  conversationId: config.conversationId,
  placeholder: null, // the reply element that has not got its message id yet
  lastSend: null, // { text, userEl } of the last message sent, to undo on a refusal
  awaiting: false, // a continue was asked for and nothing has come back yet
  intents: new Map(), // message id -> [intent, source], from `start`
  lastResume: 0,
  sending: false, // a send is waiting for the socket or for a new conversation
};

const sameId = (a, b) => a != null && b != null && String(a) === String(b);

function showNotice(text, kind = "") {
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = false;
}

function hideNotice() {
  notice.hidden = true;
}

function activeReply() {
  return msgs.pendingMessages().find((el) => el.dataset.id) ?? null;
}

function updateBusy() {
  const busy = Boolean(state.placeholder || state.awaiting || msgs.pendingMessages().length);
  document.body.classList.toggle("busy", busy);
  sendButton.hidden = busy;
  stopButton.hidden = !busy;
  stopButton.disabled = !activeReply();
}

/** The element a frame is about, binding the waiting placeholder to a new message id. */
function replyFor(frame) {
  if (frame.message_id == null) return null;
  // Every socket of a user hears all of that user's replies: keep this conversation's.
  if (frame.conversation_id != null && !sameId(frame.conversation_id, state.conversationId)) {
    return null;
  }
  state.awaiting = false; // a continued reply keeps its id; a new one gets an element
  const existing = msgs.findMessage(frame.message_id);
  if (existing) return existing;
  const el = state.placeholder ?? msgs.appendMessage("assistant");
  state.placeholder = null;
  msgs.bindMessage(el, frame.message_id);
  return el;
}

function requestResume(force = false) {
  if (state.conversationId == null) return;
  const now = Date.now();
  if (!force && now - state.lastResume < 1000) return;
  state.lastResume = now;
  socket.send({ type: "resume", conversation_id: state.conversationId });
}

function finalLabel(status, finishReason) {
  if (status === "stopped") return t("stopped");
  if (status === "interrupted") return t("interrupted");
  if (finishReason === "length") return t("truncated");
  return "";
}

const handlers = {
  queued(frame) {
    const el = replyFor(frame);
    if (!el) return;
    const label = frame.position ? t("waiting", { position: frame.position }) : t("waiting_plain");
    msgs.setStatus(el, "queued", label);
  },
  start(frame) {
    if (state.conversationId == null && frame.conversation_id != null) {
      adoptConversation(frame.conversation_id);
    }
    const el = replyFor(frame);
    if (!el) return;
    state.intents.set(String(frame.message_id), [frame.intent, frame.intent_source]);
    msgs.setStatus(el, "streaming", t("reading"));
  },
  token(frame) {
    const el = replyFor(frame);
    if (!el) return;
    if (el.dataset.status !== "streaming" || el.querySelector(".msg-state").textContent) {
      msgs.setStatus(el, "streaming", "");
    }
    if (!msgs.applyToken(el, frame.offset ?? 0, frame.text ?? "")) requestResume();
  },
  snapshot(frame) {
    const el = replyFor(frame);
    if (!el) return;
    if (typeof frame.html === "string") {
      // A reply that finished while we were away: shown as if its `end` had arrived.
      handlers.end(frame);
      return;
    }
    msgs.applySnapshot(el, frame.content ?? "");
    const status = frame.status || "streaming";
    if (status === "queued") msgs.setStatus(el, status, t("waiting_plain"));
    else if (status === "streaming") msgs.setStatus(el, status, frame.offset ? "" : t("reading"));
    else msgs.setStatus(el, status, finalLabel(status, frame.finish_reason));
  },
  end(frame) {
    const el = replyFor(frame);
    if (!el) return;
    msgs.finishReply(el, frame);
    msgs.setStatus(el, el.dataset.status, finalLabel(el.dataset.status, frame.finish_reason));
    const [intent, source] = state.intents.get(String(frame.message_id)) ?? [];
    msgs.setMetrics(el, msgs.metricsLabel(frame.metrics, frame.intent ?? intent, source));
    refreshSidebar();
  },
  error(frame) {
    const text = errorText(frame.code, frame);
    const el = frame.message_id != null ? msgs.findMessage(frame.message_id) : null;
    if (el) {
      msgs.showError(el, text);
      if (msgs.isPending(el)) msgs.setStatus(el, "error", "");
      return;
    }
    if (state.placeholder && REFUSALS.has(frame.code)) {
      // A refused send is undone; a refused regenerate left the old reply in place.
      if (state.lastSend) undoLastSend();
      else location.reload();
    }
    state.awaiting = false;
    showNotice(text, "error");
  },
};

function onFrame(frame) {
  handlers[frame.type]?.(frame);
  updateBusy();
}

function undoLastSend() {
  state.placeholder?.remove();
  state.placeholder = null;
  if (state.lastSend?.userEl.isConnected) {
    state.lastSend.userEl.remove();
    if (!input.value) input.value = state.lastSend.text;
  }
}

function adoptConversation(id) {
  state.conversationId = id;
  history.replaceState(null, "", `${config.indexUrl}?c=${id}`);
}

async function createConversation(text) {
  const title = text.trim().split("\n")[0].slice(0, 60);
  try {
    const conversation = await api("POST", "conversations", { title });
    adoptConversation(conversation.id);
    document.getElementById("chat-title").textContent = conversation.title || t("untitled");
    refreshSidebar();
  } catch {
    // The socket creates one when conversation_id is absent; `start` tells us its id.
  }
}

async function send(text) {
  if (!text.trim() || state.sending || document.body.classList.contains("busy")) return;
  state.sending = true;
  try {
    await sendNow(text);
  } finally {
    state.sending = false;
  }
}

async function sendNow(text) {
  // Typed before the socket opened (or while it reconnects): give it a moment.
  if (!(await socket.whenOpen(5000))) {
    showNotice(t("not_connected"));
    return;
  }
  hideNotice();
  if (state.conversationId == null) await createConversation(text);
  const frame = { type: "message", text };
  if (state.conversationId != null) frame.conversation_id = state.conversationId;
  if (!socket.send(frame)) {
    showNotice(t("not_connected"));
    return;
  }
  const userEl = msgs.appendMessage("user", text);
  state.placeholder = msgs.appendMessage("assistant");
  msgs.setStatus(state.placeholder, "queued", t("waiting_plain"));
  state.lastSend = { text, userEl };
  input.value = "";
  composer.classList.remove("editing");
  fitInput();
  updateBusy();
}

function regenerate(el) {
  if (!socket.send({ type: "regenerate", conversation_id: state.conversationId })) {
    showNotice(t("not_connected"));
    return;
  }
  // The old reply is replaced: whatever id the new one gets, this element shows it.
  msgs.resetReply(el);
  delete el.dataset.id;
  msgs.setStatus(el, "queued", t("waiting_plain"));
  state.placeholder = el;
  state.lastSend = null;
  updateBusy();
}

function continueReply() {
  if (!socket.send({ type: "continue", conversation_id: state.conversationId })) {
    showNotice(t("not_connected"));
    return;
  }
  state.awaiting = true;
  updateBusy();
}

/** Edit & resend: the text goes back in the box; sending it adds a new turn. */
function editMessage(el) {
  input.value = msgs.messageText(el);
  composer.classList.add("editing");
  fitInput();
  input.focus();
}

function fitInput() {
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight + 2}px`;
}

function onOpen() {
  hideNotice();
  // A reply may have moved on (or ended) while we were away, or while the page loaded:
  // ask where it stands; the snapshot replaces our text, later tokens extend it.
  if (msgs.pendingMessages().length || state.placeholder) requestResume(true);
}

function onSocketState(status) {
  if (status === "closed") showNotice(t("reconnecting"));
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send(input.value);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send(input.value);
  }
  if (event.key === "Escape" && composer.classList.contains("editing")) {
    composer.classList.remove("editing");
    input.value = "";
    fitInput();
  }
});
input.addEventListener("input", fitInput);
stopButton.addEventListener("click", () => {
  const el = activeReply();
  if (el) socket.send({ type: "stop", message_id: Number(el.dataset.id) });
});
list.addEventListener("click", (event) => {
  const button = event.target.closest(".act");
  const el = button?.closest(".msg");
  if (!el) return;
  if (button.classList.contains("act-edit")) editMessage(el);
  if (button.classList.contains("act-regen")) regenerate(el);
  if (button.classList.contains("act-continue")) continueReply();
  if (button.classList.contains("act-copy-reply")) msgs.copyReply(el, button);
});

const socket = new ChatSocket(config.wsPath, {
  onFrame,
  onOpen,
  onState: onSocketState,
});
enableLanguageSwitch();
msgs.enhanceCodeBlocks(list);
initSidebar(() => state.conversationId);
initSettings(() => state.conversationId);
startStatusBadge();
updateBusy();
msgs.scrollToEnd(true);
input.focus();
document.body.dataset.ready = "1";
