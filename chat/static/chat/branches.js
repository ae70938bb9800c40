// The tree of a conversation on the page: "‹ 2/3 ›" on a reply with alternatives or an
// edited user message, ←/→ on a focused message, and the `branch` frame that every tab
// of the user gets when one of them chooses another branch.
import { config, errorText, t } from "./config.js";
import { isCurrent } from "./conversation.js";
import * as msgs from "./messages.js";
import * as thinking from "./thinking.js";

const list = document.getElementById("messages");

/** Show the place of message `el` among `siblingIds` (oldest first). */
export function setBranch(el, siblingIds = []) {
  const nav = el.querySelector(".msg-branch");
  if (!nav) return;
  const ids = siblingIds.map(String);
  const index = ids.indexOf(el.dataset.id);
  nav.dataset.siblings = ids.length > 1 ? ids.join(",") : "";
  nav.hidden = ids.length < 2 || index < 0;
  nav.querySelector(".branch-pos").textContent = nav.hidden
    ? ""
    : t("branch_position", { index: index + 1, count: ids.length });
}

export function setParent(el, parentId) {
  if (!el) return;
  el.dataset.parent = parentId == null ? "" : String(parentId);
}

/** The id of the sibling `step` (-1, +1) away from `el`, or null at either end. */
function neighbour(el, step) {
  const ids = (el.querySelector(".msg-branch")?.dataset.siblings || "").split(",");
  const index = ids.indexOf(el.dataset.id);
  const next = ids[index + step];
  return index < 0 || !next ? null : Number(next);
}

/** The element shown for the children of `parentId`, and everything after it. */
function shownFrom(parentId) {
  const key = parentId == null ? "" : String(parentId);
  const all = [...list.querySelectorAll(".msg")];
  const start = all.findIndex((el) => el.dataset.parent === key);
  return start < 0 ? null : all.slice(start);
}

/** Drop the elements of the branch below `parentId` (a new branch replaces them). */
export function dropBranchBelow(parentId) {
  for (const el of shownFrom(parentId) ?? []) el.remove();
}

function showMessage(payload) {
  const el = msgs.appendMessage(payload.role, payload.content ?? "", new Date(payload.created_at));
  msgs.bindMessage(el, payload.id);
  setParent(el, payload.parent_id);
  if (payload.role === "assistant") {
    msgs.finishReply(el, payload);
    thinking.finishReasoning(el, payload);
    const label = payload.status === "stopped" ? t("stopped") : "";
    msgs.setStatus(el, payload.status, label);
    msgs.setMetrics(el, msgs.metricsLabel(payload.metrics, payload.intent, payload.intent_source));
    if (payload.error_code) msgs.showError(el, errorText(payload.error_code));
  }
  setBranch(el, payload.sibling_ids);
  return el;
}

/** A `branch` frame: this conversation now shows the branch of `message_id`. */
export function applyBranch(frame) {
  if (!isCurrent(frame.conversation_id) || !config.latestPage) return;
  const first = frame.messages?.[0];
  const shown = first ? shownFrom(first.parent_id) : null;
  if (!frame.complete || !shown) {
    // Too long a branch to send, or one starting above this page: read it afresh.
    window.location.assign(`${config.indexUrl}?c=${frame.conversation_id}`);
    return;
  }
  const focused = document.activeElement?.closest?.(".msg") != null;
  for (const el of shown) el.remove();
  for (const payload of frame.messages) showMessage(payload);
  if (focused) msgs.findMessage(frame.message_id)?.focus();
}

/** Wire the switches; `select(messageId)` asks the server for that branch. */
export function initBranches(select) {
  list.addEventListener("click", (event) => {
    const button = event.target.closest(".branch-prev, .branch-next");
    const el = button?.closest(".msg");
    if (!el || document.body.classList.contains("busy")) return;
    const target = neighbour(el, button.classList.contains("branch-prev") ? -1 : 1);
    if (target != null) select(target);
  });
  list.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const el = event.target.closest?.(".msg");
    // Only on the message itself (or its buttons), never while typing somewhere.
    if (!el || event.target.matches("input, textarea, [contenteditable]")) return;
    if (document.body.classList.contains("busy")) return;
    const target = neighbour(el, event.key === "ArrowLeft" ? -1 : 1);
    if (target == null) return;
    event.preventDefault();
    select(target);
  });
}
