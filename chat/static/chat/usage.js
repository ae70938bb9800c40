// Today's usage in the settings dialog ("today: 12 replies, 8,400 of 50,000 tokens"),
// read from GET /api/usage when the page opens and each time the dialog opens.
import { api } from "./api.js";

const spot = document.getElementById("usage-today");

async function refresh() {
  try {
    const usage = await api("GET", "usage");
    spot.textContent = usage.summary;
    const full =
      (usage.reply_limit > 0 && usage.replies >= usage.reply_limit) ||
      (usage.token_limit > 0 && usage.tokens >= usage.token_limit);
    spot.dataset.full = String(full);
  } catch {
    spot.textContent = "";
  }
}

if (spot) {
  refresh();
  document.getElementById("open-settings")?.addEventListener("click", refresh);
}
