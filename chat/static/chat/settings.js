// The settings dialog: this conversation's system prompt and sampler overrides, and the
// user's API keys (create: the raw key is shown once; revoke).
import { api, itemsOf } from "./api.js";
import { notificationsWanted, setNotifications } from "./away.js";
import { config, t } from "./config.js";
import { confirmDialog } from "./dialogs.js";
import { copyText } from "./messages.js";

const dialog = document.getElementById("settings-dialog");
const convArea = document.getElementById("conv-settings-area");
const convNone = document.getElementById("conv-settings-none");
const convForm = document.getElementById("conv-settings");
const keyList = document.getElementById("key-list");
const keyForm = document.getElementById("key-create");
const created = document.getElementById("key-created");
const rawKey = document.getElementById("key-raw");

function numberOrNull(value, parse) {
  const text = String(value).trim();
  return text === "" ? null : parse(text);
}

async function saveConversation(conversationId) {
  const data = new FormData(convForm);
  const status = convForm.querySelector(".form-status");
  const body = {
    system_prompt: String(data.get("system_prompt") ?? ""),
    temperature: numberOrNull(data.get("temperature"), Number.parseFloat),
    max_tokens: numberOrNull(data.get("max_tokens"), (v) => Number.parseInt(v, 10)),
    show_thinking: convForm.elements.show_thinking.checked,
  };
  // Offered only when the backends serve more than one model.
  if (convForm.elements.model) body.model = String(data.get("model") ?? "");
  // Sent only where the backend bounds thinking (the field is hidden elsewhere).
  if (!document.getElementById("effort-field").hidden) {
    body.reasoning_effort = String(data.get("reasoning_effort") ?? "");
  }
  try {
    await api("PATCH", `conversations/${conversationId}`, body);
    document.getElementById("messages").classList.toggle("hide-thinking", !body.show_thinking);
    status.textContent = t("saved");
  } catch (error) {
    status.textContent = t("request_failed", { status: error.status ?? "?" });
  }
  setTimeout(() => (status.textContent = ""), 2500);
}

function keyItem(key) {
  const li = document.createElement("li");
  const revoked = Boolean(key.revoked_at) || key.is_active === false;
  li.classList.toggle("revoked", revoked);
  const name = Object.assign(document.createElement("span"), {
    className: "grow",
    textContent: `${key.name || "—"} (kc_${key.prefix ?? "?"}…)`,
  });
  const used = Object.assign(document.createElement("span"), {
    className: "muted small",
    textContent: revoked
      ? t("revoked")
      : key.last_used_at
        ? t("last_used", { when: new Date(key.last_used_at).toLocaleString() })
        : t("never_used"),
  });
  li.append(name, used);
  if (!revoked) {
    const button = Object.assign(document.createElement("button"), {
      type: "button",
      className: "btn btn-small",
      textContent: t("revoke"),
    });
    button.addEventListener("click", () => revokeKey(key));
    li.append(button);
  }
  return li;
}

async function loadKeys() {
  try {
    const keys = itemsOf(await api("GET", "keys"));
    keyList.replaceChildren(...keys.map(keyItem));
    if (keys.length === 0) {
      keyList.append(Object.assign(document.createElement("li"), { textContent: t("no_keys") }));
    }
  } catch (error) {
    keyList.replaceChildren(
      Object.assign(document.createElement("li"), {
        textContent: t("request_failed", { status: error.status ?? "?" }),
      }),
    );
  }
}

async function revokeKey(key) {
  if (!(await confirmDialog(t("revoke_confirm", { name: key.name || key.prefix }), t("revoke")))) {
    return;
  }
  await api("DELETE", `keys/${key.id}`);
  await loadKeys();
}

async function createKey(event) {
  event.preventDefault();
  const form = new FormData(keyForm);
  const name = String(form.get("name") ?? "").trim();
  const result = await api("POST", "keys", { name, keep_history: form.has("keep_history") });
  rawKey.value = result.key;
  created.hidden = false;
  keyForm.reset();
  await loadKeys();
}

/** The conversation section follows the page: a conversation made by the first message
 * since the page loaded gets its form (with the defaults it was made with) and links. */
function showConversation(id) {
  convArea.hidden = id == null;
  convNone.hidden = id != null;
  if (id == null || convForm.dataset.conversationId === String(id)) return;
  convForm.dataset.conversationId = String(id);
  for (const field of convForm.querySelectorAll("textarea, input:not([type=checkbox]), select")) {
    field.value = "";
  }
  convForm.elements.show_thinking.checked = true;
  for (const link of convArea.querySelectorAll("a[data-format]")) {
    link.href = `${config.apiRoot}conversations/${id}/export?format=${link.dataset.format}`;
  }
}

export function initSettings(getConversationId) {
  const rendered = getConversationId();
  if (rendered != null) convForm.dataset.conversationId = String(rendered);
  document.getElementById("open-settings").addEventListener("click", () => {
    showConversation(getConversationId());
    created.hidden = true;
    rawKey.value = "";
    dialog.showModal();
    loadKeys();
  });
  convForm.addEventListener("submit", (event) => {
    event.preventDefault();
    saveConversation(getConversationId());
  });
  keyForm.addEventListener("submit", createKey);
  const notify = document.getElementById("notify-away");
  notify.checked = notificationsWanted();
  notify.addEventListener("change", async () => {
    const done = await setNotifications(notify.checked);
    if (!done) notify.checked = false;
    document.getElementById("notify-status").textContent = done ? "" : t("notify_refused");
  });
  document.getElementById("key-copy").addEventListener("click", () => copyText(rawKey.value));
}
