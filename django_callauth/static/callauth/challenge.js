// Polls the flow's status and finishes the login by itself once the call is confirmed.
// Without JavaScript the page still works: the "I have called" button posts the same form.
// When the flow ends without a login, the page is reloaded: the server renders the
// specific reason (another phone, no account, time up…) and a form to start again.
(function () {
  "use strict";
  var root = document.getElementById("callauth-challenge");
  if (!root || !window.fetch) { return; }
  var statusUrl = root.dataset.statusUrl;
  var form = document.getElementById("callauth-complete");
  var statusLine = document.getElementById("callauth-status");
  var countdown = document.getElementById("callauth-countdown");
  var deadline = Date.now() + 1000 * parseInt(root.dataset.expiresIn || "0", 10);
  var countdownTemplate = countdown ? countdown.textContent.replace(/\d+/, "{s}") : "";
  var finished = false;
  var POLL_MS = 2000;

  function tick() {
    if (!countdown || finished) { return; }
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    countdown.textContent = countdownTemplate.replace("{s}", String(left));
    if (left > 0) { window.setTimeout(tick, 1000); }
  }

  function reload() { finished = true; window.location.reload(); }

  function complete() {
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    finished = true;
    statusLine.textContent = statusLine.dataset.textConfirmed;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token },
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (result.ok && result.body.redirect) { window.location.assign(result.body.redirect); return; }
      if (result.body.error === "not_confirmed") { finished = false; window.setTimeout(poll, POLL_MS); return; }
      reload();
    }).catch(reload);
  }

  function poll() {
    if (finished) { return; }
    fetch(statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.status === "pending") { window.setTimeout(poll, POLL_MS); return; }
        if (body.status === "confirmed" && form) { complete(); return; }
        reload();
      })
      .catch(function () { window.setTimeout(poll, POLL_MS * 2); });
  }

  if (root.dataset.status === "pending") { tick(); window.setTimeout(poll, POLL_MS); }
  else if (root.dataset.status === "confirmed" && form) { complete(); }
})();
