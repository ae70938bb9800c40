// The model's thinking, folded above its answer: streamed while the reply is written
// (reasoning frames, offsets of their own), then the sanitized HTML and how long it took.
import { t } from "./config.js";
import { codePoints, scrollToEnd } from "./messages.js";

const known = new WeakMap(); // element -> { text, count } of the reasoning shown

function block(el) {
  let details = el.querySelector(".msg-thinking");
  if (!details) {
    details = document.createElement("details");
    details.className = "msg-thinking";
    const summary = document.createElement("summary");
    const body = document.createElement("div");
    body.className = "thinking-body plain";
    details.append(summary, body);
    el.querySelector(".msg-body").before(details);
  }
  return details;
}

function showPlain(el, text, label) {
  const details = block(el);
  details.querySelector("summary").textContent = label;
  const body = details.querySelector(".thinking-body");
  body.className = "thinking-body plain";
  body.textContent = text;
  known.set(el, { text, count: codePoints(text) });
}

/** Apply a `reasoning` frame; false when it starts past what we have (a gap). */
export function applyReasoning(el, offset, text) {
  const state = known.get(el) ?? { text: "", count: 0 };
  if (offset > state.count) return false;
  const fresh = Array.from(text).slice(state.count - offset).join("");
  if (!fresh) return true;
  showPlain(el, state.text + fresh, t("thinking"));
  scrollToEnd(false);
  return true;
}

/** A snapshot's reasoning replaces what we had (nothing shown when there is none). */
export function applyReasoningSnapshot(el, reasoning) {
  if (reasoning) showPlain(el, reasoning, t("thinking"));
}

/** The settled reply: the thinking's HTML, folded, with how long it took. */
export function finishReasoning(el, frame) {
  if (!frame.reasoning) {
    el.querySelector(".msg-thinking")?.remove();
    known.delete(el);
    return;
  }
  const ms = frame.metrics?.reasoning_ms;
  let label = ms != null ? t("thought_for", { seconds: Math.max(1, Math.round(ms / 1000)) }) : t("thought");
  if (!frame.content) label = t("thought_unfinished");
  showPlain(el, frame.reasoning, label);
  if (typeof frame.reasoning_html === "string") {
    const body = el.querySelector(".thinking-body");
    body.className = "thinking-body markdown";
    body.innerHTML = frame.reasoning_html; // sanitized by nh3 on the server
  }
}

/** Forget the thinking shown: a regenerated reply starts again. */
export function resetReasoning(el) {
  el.querySelector(".msg-thinking")?.remove();
  known.delete(el);
}
