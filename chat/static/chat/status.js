// The backend badge: GET /api/simple-chat/health every ~15 s (model, version, state;
// staff also get one line per backend of the pool in its tooltip), and at once from
// the reply frames: busy while a reply is written, offline when the model server does
// not answer, checked again when a reply ends.
import { api } from "./api.js";
import { config, t } from "./config.js";

const badge = document.getElementById("backend-status");
let lastBackend = {};
let lastPool = [];
let recheck = null;

function stateOf(backend) {
  if (!backend.reachable) return "offline";
  if (backend.idle === false || backend.queue > 0) return "busy";
  return "online";
}

/** One line of the tooltip per backend (staff): "gpu1: online · model · 1/2 · 40 t/s". */
function poolLines(backends) {
  if (backends.length < 2) return [];
  return backends.map((b) => {
    const parts = [
      t(b.reachable ? "online" : "offline"),
      (b.model ?? "").replace(/^koboldcpp\//, ""),
      `${b.busy}/${b.slots}`,
      b.tokens_per_s != null && `${Math.round(b.tokens_per_s)} t/s`,
      b.error,
    ];
    return `${b.name}: ${parts.filter(Boolean).join(" · ")}`;
  });
}

function render(state, backend, backends = lastPool) {
  lastBackend = backend;
  lastPool = backends;
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
  badge.title = [
    t(words[state]),
    detail,
    backend.url,
    backend.error,
    ...poolLines(backends),
  ]
    .filter(Boolean)
    .join("\n");
}

async function refresh() {
  try {
    const health = await api("GET", "simple-chat/health");
    render(stateOf(health?.backend ?? {}), health?.backend ?? {}, health?.backends ?? []);
  } catch (error) {
    // 503 means "degraded": the body still says what the backend is doing.
    const backend = error.body?.backend ?? {};
    render(stateOf(backend), backend, error.body?.backends ?? []);
  }
}

const WRITING = new Set(["start", "token", "reasoning"]);
const BACKEND_ERRORS = { backend_unreachable: "offline", backend_busy: "busy" };

/** Follow the backend from a frame of the socket (no request). */
export function noteFrame(frame) {
  if (WRITING.has(frame.type) && badge.dataset.state !== "busy") {
    render("busy", lastBackend);
  } else if (frame.type === "error" && BACKEND_ERRORS[frame.code]) {
    render(BACKEND_ERRORS[frame.code], lastBackend);
  } else if (frame.type === "end") {
    clearTimeout(recheck);
    recheck = setTimeout(refresh, 300); // the next reply may already be writing
  }
}

export function startStatusBadge() {
  refresh();
  setInterval(refresh, config.healthIntervalMs);
}
