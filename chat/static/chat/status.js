// The backend badge: GET /api/simple-chat/health every ~15 s (model, version, state).
import { api } from "./api.js";
import { config, t } from "./config.js";

const badge = document.getElementById("backend-status");

function stateOf(health) {
  const given = String(health.status ?? health.state ?? "").toLowerCase();
  if (["online", "offline", "busy"].includes(given)) return given;
  if (health.ok === false || health.online === false) return "offline";
  if (health.idle === false || health.busy === true || health.queue > 0) return "busy";
  return "online";
}

function render(state, health) {
  badge.dataset.state = state;
  const text = badge.querySelector(".badge-text");
  const words = { online: "online", offline: "offline", busy: "busy_backend" };
  const detail = [health.model, health.version && `v${health.version}`, health.api, health.backend]
    .filter(Boolean)
    .join(" · ");
  text.textContent = t(words[state] ?? "checking");
  if (detail) {
    const span = Object.assign(document.createElement("span"), {
      className: "badge-detail",
      textContent: ` · ${detail}`,
    });
    text.append(span);
  }
  const where = [health.url, health.backend_label].filter(Boolean).join(" · ");
  badge.title = [t(words[state] ?? "checking"), detail, where, health.message || health.error]
    .filter(Boolean)
    .join("\n");
}

async function refresh() {
  try {
    const health = await api("GET", "simple-chat/health");
    render(stateOf(health ?? {}), health ?? {});
  } catch (error) {
    render("offline", error.body ?? {});
  }
}

export function startStatusBadge() {
  refresh();
  setInterval(refresh, config.healthIntervalMs);
}
