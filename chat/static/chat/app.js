// The chat page controller: sending, the message actions, and the WebSocket protocol of
// DESIGN.md (what started a reply, errors, resume on reconnect; the frames of a reply's
// life are replies.js, the message box composer.js).
import * as branches from "./branches.js";
import { clearComposer, editText, giveBack, initComposer, isEditing } from "./composer.js";
import { config, errorText, t } from "./config.js";
import { adoptConversation, conversationId, isCurrent, showTitle } from "./conversation.js";
import { enableLanguageSwitch } from "./language.js";
import * as msgs from "./messages.js";
import { hideNotice, showNotice, showRefusal } from "./notice.js";
import { replyFor, replyHandlers, setWaitingElement, waitingElement } from "./replies.js";
import { initSettings } from "./settings.js";
import { initSidebar, refreshSidebar } from "./sidebar.js";
import { ChatSocket } from "./socket.js";
import * as thinking from "./thinking.js";
import { noteFrame, startStatusBadge } from "./status.js";

const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const list = document.getElementById("messages");
// Errors about an action refused before any reply existed: undo it, say why.
const REFUSALS = new Set(["busy", "rate_limited", "quota_exceeded", "bad_request", "forbidden"]);

const state = {
  lastSend: null, // { text, userEl } of the last message sent, to undo on a refusal
  regenerating: null, // { el, status, label } of a reply asked to be written again
  continuing: null, // the reply element asked to continue, until the server answers
  editing: null, // { id, sent } of the user message being edited in the composer
  lastResume: 0,
  sending: false, // a send is waiting for the socket
};

function activeReply() {
  return msgs.pendingMessages().find((el) => el.dataset.id) ?? null;
}

function updateBusy() {
  const asked =
    waitingElement() || state.regenerating || state.continuing || state.editing?.sent;
  const busy = Boolean(asked || msgs.pendingMessages().length);
  document.body.classList.toggle("busy", busy);
  sendButton.hidden = busy;
  stopButton.hidden = !busy;
  stopButton.disabled = !activeReply();
}

function requestResume(force = false) {
  if (conversationId() == null) return;
  const now = Date.now();
  if (!force && now - state.lastResume < 1000) return;
  state.lastResume = now;
  socket.send({ type: "resume", conversation_id: conversationId() });
}

/** Is this `user_message` the one this tab just sent (and waits to hear of)? */
function isOwnSend(frame) {
  const sent = state.lastSend;
  if (!sent || !waitingElement() || sent.userEl.dataset.id) return false;
  if (frame.message?.content !== sent.text) return false;
  return conversationId() == null || isCurrent(frame.conversation_id);
}

/** The user message of a `user_message` frame, and a waiting reply under it. */
function showExchange(frame, message) {
  const when = message.created_at ? new Date(message.created_at) : new Date();
  const userEl = msgs.appendMessage("user", message.content ?? "", when);
  msgs.bindMessage(userEl, message.id);
  branches.setParent(userEl, message.parent_id);
  branches.setBranch(userEl, message.sibling_ids);
  const reply = msgs.appendMessage("assistant");
  msgs.bindMessage(reply, frame.message_id);
  branches.setParent(reply, message.id);
  msgs.setStatus(reply, "queued", t("waiting_plain"));
}

const handlers = {
  ...replyHandlers(() => requestResume()),
  user_message(frame) {
    const message = frame.message ?? {};
    refreshSidebar();
    if (frame.edit_of != null && String(state.editing?.id) === String(frame.edit_of)) {
      state.editing = null; // this tab's edit, accepted
      clearComposer();
    }
    if (isOwnSend(frame)) {
      if (conversationId() == null) {
        adoptConversation(frame.conversation_id, frame.conversation_title);
      }
      const { userEl } = state.lastSend;
      msgs.bindMessage(userEl, message.id);
      branches.setParent(userEl, message.parent_id);
      state.lastSend = null;
      branches.setParent(replyFor(frame), message.id); // binds the placeholder
      return;
    }
    // An edit, or sent from another tab or device: shown here too, once.
    if (!isCurrent(frame.conversation_id) || !config.latestPage) return;
    showTitle(frame.conversation_title);
    if (msgs.findMessage(message.id)) return;
    if (frame.edit_of != null) branches.dropBranchBelow(message.parent_id);
    showExchange(frame, message);
  },
  regenerate(frame) {
    if (!isCurrent(frame.conversation_id)) return;
    // This tab's Regenerate, or another tab's: the new reply takes the place of the one
    // shown under the same message, and a branch below it (an older reply) goes.
    const el =
      state.regenerating?.el ?? msgs.findMessage(frame.sibling_ids?.at(-2)) ?? msgs.lastReply();
    state.regenerating = null;
    if (!el || !config.latestPage) return;
    while (el.nextElementSibling?.classList.contains("msg")) el.nextElementSibling.remove();
    msgs.resetReply(el);
    thinking.resetReasoning(el);
    msgs.bindMessage(el, frame.message_id);
    branches.setParent(el, frame.parent_id);
    branches.setBranch(el, frame.sibling_ids);
    msgs.setStatus(el, "queued", t("waiting_plain"));
  },
  branch(frame) {
    branches.applyBranch(frame);
  },
  continue(frame) {
    state.continuing = null;
    const el = replyFor(frame);
    if (el) msgs.setStatus(el, "queued", t("waiting_plain"));
  },
  error(frame) {
    const refusal = { conversationId: conversationId(), stop: stopReply };
    if (REFUSALS.has(frame.code) && undoRefusedAction()) {
      showRefusal(frame, refusal);
      return;
    }
    const el = frame.message_id != null ? msgs.findMessage(frame.message_id) : null;
    if (el) {
      msgs.showError(el, errorText(frame.code, frame));
      if (msgs.isPending(el)) msgs.setStatus(el, "error", "");
      return;
    }
    showRefusal(frame, refusal);
  },
};

function onFrame(frame) {
  noteFrame(frame);
  handlers[frame.type]?.(frame);
  updateBusy();
}

/** The server refused what this tab just asked: put things back as they were. */
function undoRefusedAction() {
  if (state.editing?.sent) {
    state.editing.sent = false; // the edited text stays in the box
    return true;
  }
  if (state.regenerating) {
    const { el, status, label } = state.regenerating;
    state.regenerating = null;
    msgs.setStatus(el, status, label);
    return true;
  }
  if (state.continuing) {
    state.continuing = null;
    return true;
  }
  if (waitingElement() && state.lastSend) {
    undoLastSend();
    return true;
  }
  return false;
}

function undoLastSend() {
  waitingElement()?.remove();
  setWaitingElement(null);
  if (state.lastSend?.userEl.isConnected) {
    state.lastSend.userEl.remove();
    giveBack(state.lastSend.text);
  }
  state.lastSend = null;
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
  if (state.editing && isEditing()) {
    // An edit: shown once the server has stored it (the `user_message` frame).
    if (!socket.send({ type: "edit", message_id: Number(state.editing.id), text })) {
      showNotice(t("not_connected"));
      return;
    }
    state.editing.sent = true;
    updateBusy();
    return;
  }
  state.editing = null;
  // A new conversation is made with its first message: a refusal leaves nothing.
  const frame = { type: "message", text };
  if (conversationId() == null) frame.new_conversation = true;
  else frame.conversation_id = conversationId();
  if (!socket.send(frame)) {
    showNotice(t("not_connected"));
    return;
  }
  const userEl = msgs.appendMessage("user", text);
  const placeholder = msgs.appendMessage("assistant");
  msgs.setStatus(placeholder, "queued", t("waiting_plain"));
  setWaitingElement(placeholder);
  state.lastSend = { text, userEl };
  clearComposer();
  updateBusy();
}

/** The frame of a Regenerate or Continue of reply `el` (its id: the server checks it is
 * still the conversation's last reply). */
function replyAction(type, el) {
  const frame = { type, conversation_id: conversationId(), message_id: Number(el.dataset.id) };
  if (socket.send(frame)) {
    hideNotice();
    return true;
  }
  showNotice(t("not_connected"));
  return false;
}

function regenerate(el) {
  const label = el.querySelector(".msg-state").textContent;
  if (!replyAction("regenerate", el)) return;
  // Replaced once the server accepts (the `regenerate` frame); until then, kept.
  state.regenerating = { el, status: el.dataset.status, label };
  msgs.setStatus(el, "queued", t("waiting_plain"));
  updateBusy();
}

function continueReply(el) {
  if (!replyAction("continue", el)) return;
  state.continuing = el;
  updateBusy();
}

function stopReply(messageId) {
  socket.send({ type: "stop", message_id: Number(messageId) });
}

function onOpen() {
  hideNotice();
  // A reply may have moved on (or ended) while we were away, or while the page loaded:
  // ask where it stands; the snapshot replaces our text, later tokens extend it.
  if (msgs.pendingMessages().length || waitingElement()) requestResume(true);
}

function onSocketState(status) {
  if (status === "closed") showNotice(t("reconnecting"));
}

initComposer(send);
branches.initBranches((messageId) => socket.send({ type: "select", message_id: messageId }));
stopButton.addEventListener("click", () => {
  const el = activeReply();
  if (el) stopReply(el.dataset.id);
});
list.addEventListener("click", (event) => {
  const button = event.target.closest(".act");
  const el = button?.closest(".msg");
  if (!el) return;
  if (button.classList.contains("act-edit")) {
    state.editing = { id: el.dataset.id, sent: false };
    editText(msgs.messageText(el));
  }
  if (button.classList.contains("act-regen")) regenerate(el);
  if (button.classList.contains("act-continue")) continueReply(el);
  if (button.classList.contains("act-copy-reply")) msgs.copyReply(el, button);
});

const socket = new ChatSocket(config.wsPath, {
  onFrame,
  onOpen,
  onState: onSocketState,
});
enableLanguageSwitch();
msgs.enhanceCodeBlocks(list);
msgs.localizeTimes(list);
initSidebar(conversationId);
initSettings(conversationId);
startStatusBadge();
updateBusy();
msgs.scrollToEnd(true);
document.body.dataset.ready = "1";
