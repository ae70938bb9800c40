// The frames of a reply's life on the page (queued, start, token, rewind, reasoning,
// snapshot, end): each applied to the element of its message in this conversation.
import { t } from "./config.js";
import { isCurrent } from "./conversation.js";
import * as msgs from "./messages.js";
import { replyEndedAway } from "./away.js";
import { replyEnded } from "./notice.js";
import { refreshSidebar } from "./sidebar.js";
import * as thinking from "./thinking.js";

const intents = new Map(); // message id -> [intent, source], from `start`
let placeholder = null; // the reply element this tab added, until it gets its id

export const waitingElement = () => placeholder;

export function setWaitingElement(el) {
  placeholder = el;
}

/** The element a frame is about, binding the waiting placeholder to a new message id. */
export function replyFor(frame) {
  if (frame.message_id == null) return null;
  // Every socket of a user hears all of that user's replies: keep this conversation's.
  if (frame.conversation_id != null && !isCurrent(frame.conversation_id)) return null;
  const existing = msgs.findMessage(frame.message_id);
  if (existing) return existing;
  const el = placeholder ?? msgs.appendMessage("assistant");
  placeholder = null;
  msgs.bindMessage(el, frame.message_id);
  return el;
}

function finalLabel(status, finishReason) {
  if (status === "stopped") return t("stopped");
  if (status === "interrupted") return t("interrupted");
  if (finishReason === "length") return t("truncated");
  return "";
}

/** The handlers; `resume()` asks for a snapshot when a frame shows a gap. */
export function replyHandlers(resume) {
  const handlers = {
    queued(frame) {
      const el = replyFor(frame);
      if (!el) return;
      const { position } = frame;
      msgs.setStatus(el, "queued", position ? t("waiting", { position }) : t("waiting_plain"));
    },
    start(frame) {
      const el = replyFor(frame);
      if (!el) return;
      intents.set(String(frame.message_id), [frame.intent, frame.intent_source]);
      msgs.setStatus(el, "streaming", t("reading"));
    },
    token(frame) {
      const el = replyFor(frame);
      if (!el) return;
      if (el.dataset.status !== "streaming" || el.querySelector(".msg-state").textContent) {
        msgs.setStatus(el, "streaming", "");
      }
      if (!msgs.applyToken(el, frame.offset ?? 0, frame.text ?? "")) resume();
    },
    rewind(frame) {
      const el = replyFor(frame);
      if (el) msgs.truncateReply(el, frame.offset ?? 0);
    },
    reasoning(frame) {
      const el = replyFor(frame);
      if (!el) return;
      if (el.querySelector(".msg-state").textContent) msgs.setStatus(el, "streaming", "");
      if (!thinking.applyReasoning(el, frame.offset ?? 0, frame.text ?? "")) resume();
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
      thinking.applyReasoningSnapshot(el, frame.reasoning ?? "");
      const status = frame.status || "streaming";
      if (status === "queued") msgs.setStatus(el, status, t("waiting_plain"));
      else if (status === "streaming") msgs.setStatus(el, status, frame.offset ? "" : t("reading"));
      else msgs.setStatus(el, status, finalLabel(status, frame.finish_reason));
    },
    end(frame) {
      replyEnded(frame.message_id);
      replyEndedAway(frame);
      const el = replyFor(frame);
      if (!el) return;
      msgs.finishReply(el, frame);
      thinking.finishReasoning(el, frame);
      msgs.setStatus(el, el.dataset.status, finalLabel(el.dataset.status, frame.finish_reason));
      const [intent, source] = intents.get(String(frame.message_id)) ?? [];
      msgs.setMetrics(el, msgs.metricsLabel(frame.metrics, frame.intent ?? intent, source));
      refreshSidebar();
    },
  };
  return handlers;
}
