// The conversation the page shows: the one owner of its id (also in the URL), and its
// title in the heading and the browser tab.
import { config, t } from "./config.js";

const heading = document.getElementById("chat-title");
let currentId = config.conversationId;

export const conversationId = () => currentId;

export const isCurrent = (id) => id != null && currentId != null && String(id) === String(currentId);

export function showTitle(title) {
  const text = title || t("untitled");
  heading.textContent = text;
  document.title = `${text} · koboldchat`;
}

/** The page now shows conversation `id` (just made by its first message). */
export function adoptConversation(id, title) {
  currentId = id;
  history.replaceState(null, "", `${config.indexUrl}?c=${id}`);
  showTitle(title);
}
