// Fabrikam ID: passkey ceremonies (WebAuthn Level 3) for the pages that offer them.
// Served as a file so the Content-Security-Policy allows `script-src 'self'` and nothing
// inline. Each button carries what it needs in data- attributes:
//   data-passkey="register" | "sign-in"
//   data-options, data-finish: the JSON endpoints (POST, same origin)
//   data-csrf: the page's CSRF token, sent in the JSON body
//   data-name-input: (register) the id of the input naming the new passkey
//   data-then-sign-in: (register) the id of the sign-in button to press once registered
// The server keeps each ceremony's state; this script only carries bytes between it and
// the authenticator. Without WebAuthn the buttons say so and stay disabled.
(function () {
  "use strict";

  function fromB64url(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function status(text) {
    var el = document.getElementById("passkey-status");
    if (el) {
      el.textContent = text;
      el.hidden = !text;
    }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) {
          throw new Error(json.message || "Fabrikam ID could not continue (" + res.status + ").");
        }
        return json;
      });
    });
  }

  function ids(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = fromB64url(c.id);
      return copy;
    });
  }

  function register(button) {
    var csrf = button.dataset.csrf;
    var nameInput = button.dataset.nameInput && document.getElementById(button.dataset.nameInput);
    var name = nameInput ? nameInput.value : "";
    return post(button.dataset.options, { csrf_token: csrf }).then(function (options) {
      var pk = options.publicKey;
      pk.challenge = fromB64url(pk.challenge);
      pk.user.id = fromB64url(pk.user.id);
      pk.excludeCredentials = ids(pk.excludeCredentials);
      return navigator.credentials.create({ publicKey: pk });
    }).then(function (cred) {
      return post(button.dataset.finish, {
        csrf_token: csrf,
        name: name,
        credential: {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            attestationObject: toB64url(cred.response.attestationObject),
            clientDataJSON: toB64url(cred.response.clientDataJSON),
            transports: cred.response.getTransports ? cred.response.getTransports() : []
          },
          extensions: cred.getClientExtensionResults()
        }
      });
    }).then(function (answer) {
      var next = button.dataset.thenSignIn && document.getElementById(button.dataset.thenSignIn);
      if (next) {
        status("Passkey created. Now sign in with it.");
        next.hidden = false;
        return signIn(next);
      }
      window.location.assign(answer.next);
    });
  }

  function signIn(button) {
    var csrf = button.dataset.csrf;
    return post(button.dataset.options, { csrf_token: csrf }).then(function (options) {
      var pk = options.publicKey;
      pk.challenge = fromB64url(pk.challenge);
      pk.allowCredentials = ids(pk.allowCredentials);
      return navigator.credentials.get({ publicKey: pk });
    }).then(function (cred) {
      return post(button.dataset.finish, {
        csrf_token: csrf,
        credential: {
          id: cred.id,
          rawId: toB64url(cred.rawId),
          type: cred.type,
          response: {
            authenticatorData: toB64url(cred.response.authenticatorData),
            clientDataJSON: toB64url(cred.response.clientDataJSON),
            signature: toB64url(cred.response.signature),
            userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null
          },
          extensions: cred.getClientExtensionResults()
        }
      });
    }).then(function (answer) {
      window.location.assign(answer.next);
    });
  }

  function start(button) {
    var run = button.dataset.passkey === "register" ? register : signIn;
    button.disabled = true;
    status("Follow your browser's prompt to use your passkey…");
    run(button).catch(function (err) {
      button.disabled = false;
      var cancelled = err && (err.name === "NotAllowedError" || err.name === "AbortError");
      status(cancelled ? "The passkey prompt was closed or timed out. Try again." : err.message);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-passkey]");
    var supported = window.PublicKeyCredential && navigator.credentials;
    buttons.forEach(function (button) {
      if (!supported) {
        button.disabled = true;
        status("This browser cannot use passkeys here (WebAuthn needs a secure context: https, or http://localhost).");
        return;
      }
      button.addEventListener("click", function (event) {
        event.preventDefault();
        start(button);
      });
    });
  });
})();
