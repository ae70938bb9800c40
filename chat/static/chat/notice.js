// The notice above the composer: connection trouble, and refusals of what the user
// asked. A reply already running elsewhere is named, with "Go to it" and "Stop it".
import { config, errorText, t } from "./config.js";

const notice = document.getElementById("notice");
let watched = null; // id of the running reply a busy notice is about

export function showNotice(text, kind = "") {
  watched = null;
  notice.className = `notice ${kind}`;
  notice.replaceChildren(text);
  notice.hidden = false;
}

export function hideNotice() {
  watched = null;
  notice.hidden = true;
}

function button(label, className) {
  return Object.assign(document.createElement("button"), {
    type: "button",
    className: `btn btn-small ${className}`,
    textContent: label,
  });
}

/** Show why a send, Regenerate or Continue was refused; `stop(messageId)` stops the
 * running reply a `busy` refusal names (frame.running). */
export function showRefusal(frame, { conversationId, stop }) {
  const running = frame.code === "busy" ? frame.running : null;
  if (!running) {
    showNotice(errorText(frame.code, frame), "error");
    return;
  }
  const here = String(running.conversation_id) === String(conversationId);
  const title = running.title || t("untitled");
  showNotice(here ? t("busy_here") : t("busy_elsewhere", { title }), "error busy");
  const actions = Object.assign(document.createElement("span"), {
    className: "notice-actions",
  });
  if (!here) {
    const go = Object.assign(document.createElement("a"), {
      className: "btn btn-small go-to-running",
      href: `${config.indexUrl}?c=${running.conversation_id}`,
      textContent: t("go_to_it"),
    });
    actions.append(go);
  }
  const stopIt = button(t("stop_it"), "btn-danger stop-running");
  stopIt.addEventListener("click", () => {
    stopIt.disabled = true;
    stop(running.message_id);
  });
  actions.append(stopIt);
  notice.append(actions);
  watched = String(running.message_id);
}

/** A reply ended: a busy notice about it has nothing left to say. */
export function replyEnded(messageId) {
  if (watched !== null && watched === String(messageId)) hideNotice();
}
