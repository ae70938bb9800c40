// The backend badge: GET /api/simple-chat/health every ~15 s (model, version, state).
import { api } from "./api.js";
import { config, t } from "./config.js";

const badge = document.getElementById("backend-status");

function stateOf(backend) {
  if (!backend.reachable) return "offline";
  if (backend.idle === false || backend.queue > 0) return "busy";
  return "online";
}

function render(state, backend) {
  badge.dataset.state = state;
  const text = badge.querySelector(".badge-text");
  const words = { online: "online", offline: "offline", busy: "busy_backend" };
  const model = (backend.model ?? "").replace(/^koboldcpp\//, "");
  const detail = [
    model,
    backend.version && `v${backend.version}`,
    backend.api,
    backend.label, // which backend serves the page: embedded model or an external one
  ]
    .filter(Boolean)
    .join(" · ");
  text.textContent = t(words[state]);
  if (detail) {
    const span = Object.assign(document.createElement("span"), {
      className: "badge-detail",
      textContent: ` · ${detail}`,
    });
    text.append(span);
  }
  badge.title = [t(words[state]), detail, backend.url, backend.error]
    .filter(Boolean)
    .join("\n");
}

async function refresh() {
  try {
    const health = await api("GET", "simple-chat/health");
    render(stateOf(health?.backend ?? {}), health?.backend ?? {});
  } catch (error) {
    // 503 means "degraded": the body still says what the backend is doing.
    const backend = error.body?.backend ?? {};
    render(stateOf(backend), backend);
  }
}

export function startStatusBadge() {
  refresh();
  setInterval(refresh, config.healthIntervalMs);
}
