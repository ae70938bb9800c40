// The conversation sidebar: search (title and content), rename in place, delete with a
// confirmation, and the phone layout's slide-in toggle (Esc closes it).
import { api, itemsOf } from "./api.js";
import { config, t } from "./config.js";
import { showTitle } from "./conversation.js";
import { confirmDialog } from "./dialogs.js";

const app = document.getElementById("app");
const listEl = document.getElementById("conversation-list");
const search = document.getElementById("search");
const toggle = document.getElementById("sidebar-toggle");
const backdrop = document.getElementById("sidebar-backdrop");
let currentId = () => null;
let searchTimer = null;

function itemFor(conversation) {
  const tpl = document.getElementById("tpl-conversation").content.firstElementChild;
  const li = tpl.cloneNode(true);
  li.dataset.id = String(conversation.id);
  const link = li.querySelector(".conv-link");
  link.href = `${config.indexUrl}?c=${conversation.id}`;
  link.textContent = conversation.title || t("untitled");
  if (String(conversation.id) === String(currentId())) {
    li.classList.add("active");
    link.setAttribute("aria-current", "page");
  }
  return li;
}

function renderList(conversations) {
  const emptyText = search.value.trim() ? t("no_results") : "";
  listEl.replaceChildren(...conversations.map(itemFor));
  if (conversations.length === 0 && emptyText) {
    const li = Object.assign(document.createElement("li"), {
      className: "muted empty",
      textContent: emptyText,
    });
    listEl.append(li);
  }
}

/** Reload the list from the API (after a reply, a rename, or while searching). */
export async function refreshSidebar() {
  const term = search.value.trim();
  // The API documents `q`; `search` is the name the page was specified with.
  const query = term ? `?q=${encodeURIComponent(term)}` : "";
  try {
    renderList(itemsOf(await api("GET", `conversations${query}`)));
  } catch {
    // The server-rendered list stays; the next refresh tries again.
  }
}

function startRename(li) {
  const link = li.querySelector(".conv-link");
  const field = Object.assign(document.createElement("input"), {
    className: "conv-rename",
    value: link.textContent,
    maxLength: 200,
  });
  field.setAttribute("aria-label", t("rename"));
  link.hidden = true;
  li.prepend(field);
  field.focus();
  field.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = field.value.trim();
    field.remove();
    link.hidden = false;
    if (!save || !title || title === link.textContent) return;
    await api("PATCH", `conversations/${li.dataset.id}`, { title });
    link.textContent = title;
    if (li.dataset.id === String(currentId())) {
      showTitle(title);
    }
  };
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    if (event.key === "Escape") finish(false);
  });
  field.addEventListener("blur", () => finish(true));
}

async function remove(li) {
  const title = li.querySelector(".conv-link").textContent;
  if (!(await confirmDialog(t("delete_confirm", { title }), t("delete")))) return;
  await api("DELETE", `conversations/${li.dataset.id}`);
  if (li.dataset.id === String(currentId())) {
    location.assign(config.indexUrl);
    return;
  }
  li.remove();
}

function setOpen(open) {
  app.classList.toggle("sidebar-open", open);
  toggle.setAttribute("aria-expanded", String(open));
  backdrop.hidden = !open;
}

export function initSidebar(getCurrentId) {
  currentId = getCurrentId;
  listEl.addEventListener("click", (event) => {
    const li = event.target.closest(".conv");
    if (!li) return;
    if (event.target.closest(".act-rename")) startRename(li);
    if (event.target.closest(".act-delete")) remove(li);
  });
  search.form.addEventListener("submit", (event) => {
    event.preventDefault();
    refreshSidebar();
  });
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshSidebar, 250);
  });
  toggle.addEventListener("click", () => setOpen(!app.classList.contains("sidebar-open")));
  backdrop.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !app.classList.contains("sidebar-open")) return;
    if (document.querySelector("dialog[open]")) return; // Esc closes the dialog first
    setOpen(false);
    toggle.focus();
  });
}
