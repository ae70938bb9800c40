// While the tab is hidden: a reply that ends counts in the tab title ("(2) …") and, if
// the user opted in (Settings), shows a browser notification. Seeing the tab resets it.
import { t } from "./config.js";

const OPT_IN = "koboldchat.notify";
const PREFIX = /^\(\d+\) /;
let unseen = 0;

const hidden = () => document.visibilityState === "hidden";

function showCount() {
  const base = document.title.replace(PREFIX, "");
  document.title = unseen ? `(${unseen}) ${base}` : base;
}

export const notificationsWanted = () => localStorage.getItem(OPT_IN) === "1";

/** Opt in or out; opting in asks the browser's permission (false if refused). */
export async function setNotifications(wanted) {
  if (!wanted) {
    localStorage.removeItem(OPT_IN);
    return true;
  }
  if (!("Notification" in window)) return false;
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return false;
  localStorage.setItem(OPT_IN, "1");
  return true;
}

/** A reply ended (its `end` frame): counted, and notified, when nobody is looking. */
export function replyEndedAway(frame) {
  if (!hidden()) return;
  unseen += 1;
  showCount();
  if (notificationsWanted() && "Notification" in window) {
    if (Notification.permission !== "granted") return;
    const text = (frame.content ?? "").slice(0, 140);
    new Notification(t("reply_ready"), { body: text, tag: `reply-${frame.message_id}` });
  }
}

document.addEventListener("visibilitychange", () => {
  if (hidden() || unseen === 0) return;
  unseen = 0;
  showCount();
});
