// Fabrikam intranet, demo guide: keeps the live TOTP codes current. Each <output data-totp-user>
// gets the user's code from /demo/codes (JSON, same origin) when a 30-second step ends, and
// #totp-remaining counts down. Without JavaScript the page shows the codes of the moment it was
// loaded and a Refresh link. Loaded as a file (script-src 'self'): no inline script anywhere.
"use strict";
(() => {
  const remaining = document.getElementById("totp-remaining");
  const outputs = document.querySelectorAll("[data-totp-user]");
  const source = remaining && remaining.dataset.source;
  if (!remaining || !source || outputs.length === 0) return;
  let left = Number(remaining.dataset.seconds) || 0;
  const refresh = async () => {
    try {
      const res = await fetch(source, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!res.ok) return;
      const body = await res.json();
      for (const out of outputs) {
        const code = body.codes[out.dataset.totpUser];
        if (code) out.textContent = code;
      }
      left = body.remaining;
      remaining.textContent = String(left);
    } catch {
      // Keep the old codes; the Refresh link still works.
    }
  };
  setInterval(() => {
    left -= 1;
    if (left <= 0) {
      left = 30;
      refresh();
    } else {
      remaining.textContent = String(left);
    }
  }, 1000);
})();
