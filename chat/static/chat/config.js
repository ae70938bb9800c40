// The page's configuration and translated strings, read from the JSON data block
// the server renders (json_script), so the page needs no inline script.
export const config = JSON.parse(document.getElementById("chat-config").textContent);

/** The translated string `key`, with Python-style %(name)s placeholders filled. */
export function t(key, params = {}) {
  const text = config.strings[key] ?? key;
  return text.replace(/%\((\w+)\)s/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

/** The readable sentence for a protocol error code. */
export function errorText(code, frame = {}) {
  if (code === "rate_limited" && frame.retry_after) {
    return t("err_rate_limited_after", { seconds: frame.retry_after });
  }
  return config.strings[`err_${code}`] ?? frame.message ?? t("err_unknown");
}
