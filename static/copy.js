// Fabrikam ID: copy buttons. A <button data-copy="ID" data-status="ID2" hidden> copies the text
// of #ID (without spaces) and says so in #ID2 (a live region). The button stays hidden where
// scripts or the clipboard are unavailable: the text can always be selected by hand.
// Loaded as a file (script-src 'self'): no inline script anywhere.
"use strict";
for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.status || "");
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = source.textContent.replace(/\s+/g, "");
    let message = "Copied. Paste it into your authenticator app.";
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      message = "Could not copy: select the key and copy it by hand.";
    }
    if (status) status.textContent = message;
  });
}
