// Polls the flow's status and finishes the login by itself once the call is confirmed.
// Without JavaScript the page still works: the "I have called" button posts the same form.
// When the flow ends without a login, the page is reloaded: the server renders the
// specific reason (another phone, no account, time up…) and a form to start again.
//
// While it runs, the script sends every finishing request itself, one at a time: the
// buttons' forms are sent with fetch, never as a page navigation, which would abort a
// "complete" in flight and lose a login the server has already performed.
(function () {
  "use strict";
  var root = document.getElementById("callauth-challenge");
  var form = document.getElementById("callauth-complete");
  if (!root || !form || !window.fetch) { return; }
  var sandbox = root.querySelector("form.callauth-sandbox");
  var statusUrl = root.dataset.statusUrl;
  var statusLine = document.getElementById("callauth-status");
  var countdown = document.getElementById("callauth-countdown");
  var deadline = Date.now() + 1000 * parseInt(root.dataset.expiresIn || "0", 10);
  var countdownTemplate = countdown ? countdown.textContent.replace(/\d+/, "{s}") : "";
  var busy = false; // a finishing request (a simulated call or "complete") is in flight
  var done = false; // the page is leaving
  var POLL_MS = 2000;

  function tick() {
    if (!countdown || done) { return; }
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    countdown.textContent = countdownTemplate.replace("{s}", String(left));
    if (left > 0) { window.setTimeout(tick, 1000); }
  }

  function leave(url) {
    done = true;
    if (url) { window.location.assign(url); } else { window.location.reload(); }
  }

  // POSTs a form's action as an API client; resolves to {ok, body}.
  function post(action) {
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    return fetch(action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token },
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    });
  }

  function complete() {
    if (busy || done) { return; }
    busy = true;
    post(form.action).then(function (result) {
      busy = false;
      if (result.ok && result.body.redirect) { leave(result.body.redirect); return; }
      if (result.body.error === "not_confirmed") { statusLine.textContent = result.body.message; return; }
      leave();
    }).catch(function () { leave(); });
  }

  function confirmed() {
    statusLine.textContent = statusLine.dataset.textConfirmed;
    complete();
  }

  function simulateCall() {
    if (busy || done) { return; }
    busy = true;
    post(sandbox.action).then(function (result) {
      busy = false;
      if (result.ok && result.body.status === "confirmed") { confirmed(); return; }
      if (!(result.ok && result.body.status === "pending")) { leave(); }
    }).catch(function () { leave(); });
  }

  // One loop for the page's life; it asks nothing while a finishing request is in flight,
  // and an answer that comes back after one started is stale: it is ignored.
  function poll() {
    if (done) { return; }
    if (busy) { window.setTimeout(poll, POLL_MS); return; }
    var wait = POLL_MS;
    fetch(statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (busy || done || body.status === "pending") { return; }
        if (body.status === "confirmed") { confirmed(); } else { leave(); }
      }, function () { wait = POLL_MS * 2; })
      .then(function () { window.setTimeout(poll, wait); });
  }

  function intercept(element, send) {
    if (!element) { return; }
    element.addEventListener("submit", function (event) { event.preventDefault(); send(); });
  }

  intercept(form, complete);
  intercept(sandbox, simulateCall);
  if (root.dataset.status === "pending") { tick(); window.setTimeout(poll, POLL_MS); }
  else if (root.dataset.status === "confirmed") { confirmed(); window.setTimeout(poll, POLL_MS); }
})();
