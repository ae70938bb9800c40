// The language form posts to Django's set_language; with scripts on it submits on change.
export function enableLanguageSwitch() {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  document.documentElement.classList.add("js");
}
