// The message box: Enter sends, Shift+Enter adds a line, it grows with its text, counts
// characters near the limit, and takes a message back for Edit & resend (Esc cancels).
import { config, t } from "./config.js";
import { codePoints } from "./messages.js";

const input = document.getElementById("input");
const composer = document.getElementById("composer");
const counter = document.getElementById("char-count");
const COUNT_FROM = 0.8; // of the limit: below it the counter stays hidden

function fit() {
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight + 2}px`;
}

function count() {
  const used = codePoints(input.value);
  const limit = config.maxMessageChars;
  counter.hidden = !limit || used < limit * COUNT_FROM;
  counter.textContent = t("char_count", { used, limit });
  counter.classList.toggle("over", used > limit);
}

function refresh() {
  fit();
  count();
}

export const composerText = () => input.value;

/** Put `text` in the box (a refused message given back): only when it is empty. */
export function giveBack(text) {
  if (!input.value) input.value = text;
  refresh();
}

export function clearComposer() {
  input.value = "";
  composer.classList.remove("editing");
  refresh();
}

export const isEditing = () => composer.classList.contains("editing");

/** Edit: the text goes back in the box; sending it makes a new branch from there. */
export function editText(text) {
  input.value = text;
  composer.classList.add("editing");
  refresh();
  input.focus();
}

/** Wire the box; `send(text)` is called on Enter or the Send button. */
export function initComposer(send) {
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send(input.value);
    }
    if (event.key === "Escape" && composer.classList.contains("editing")) clearComposer();
  });
  input.addEventListener("input", refresh);
  input.focus();
}
