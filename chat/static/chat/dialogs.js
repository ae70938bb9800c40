// A confirmation built on <dialog>, so nothing depends on window.confirm.
const dialog = document.getElementById("confirm-dialog");

/** Ask `question`; resolves true when the user presses the `okLabel` button. */
export function confirmDialog(question, okLabel) {
  document.getElementById("confirm-text").textContent = question;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
