// The challenge page's script: countdowns, copy buttons, and the flow.
//
// The flow: polls the status and finishes the login by itself once the call is
// confirmed. Without JavaScript the page still works: the "I have called" button posts
// the same form. When the flow ends without a login, the page is reloaded: the server
// renders the specific reason (another phone, no account, time up…) and a button to
// start again.
//
// While it runs, the script sends every finishing request itself, one at a time: the
// buttons' forms are sent with fetch, never as a page navigation, which would abort a
// "complete" in flight and lose a login the server has already performed.
//
// Countdowns and copy buttons work on any page with their markup (the template tags
// callauth_countdown and callauth_number), with or without the flow.
(function () {
  "use strict";

  // -- countdowns ---------------------------------------------------------------------------

  // The template gives each plural form of "N seconds left", by CLDR category; the
  // browser knows which category a number takes in the page's language.
  var plurals = null;
  try { plurals = new Intl.PluralRules(document.documentElement.lang || undefined); } catch (e) { plurals = null; }

  function secondsLeftText(element, seconds) {
    var category = plurals ? plurals.select(seconds) : "other";
    var form = element.getAttribute("data-plural-" + category) || element.getAttribute("data-plural-other");
    return form.replace("{n}", String(seconds));
  }

  function startCountdown(element) {
    var text = element.querySelector(".callauth-countdown-text");
    var bar = element.querySelector("progress");
    var deadline = Date.now() + 1000 * parseInt(element.getAttribute("data-expires-in") || "0", 10);
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      // Only the text changes: the element is a timer, not a live region, so a screen
      // reader is not told every second.
      if (text) { text.textContent = secondsLeftText(element, left); }
      if (bar) { bar.value = left; }
      if (left > 0) { window.setTimeout(tick, 1000); }
    }
    tick();
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-callauth-countdown]"), startCountdown);

  // -- copy buttons ------------------------------------------------------------------------

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
    // Plain HTTP has no clipboard API: the old way, through a selected field.
    return new Promise(function (resolve, reject) {
      var field = document.createElement("textarea");
      field.value = text;
      field.setAttribute("readonly", "");
      field.className = "callauth-sr-only";
      document.body.appendChild(field);
      field.select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      document.body.removeChild(field);
      if (copied) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function setUpCopy(button) {
    var said = button.parentNode.querySelector("[data-callauth-copied]");
    button.hidden = false; // without a script it could not work: it is rendered hidden
    button.addEventListener("click", function () {
      copyText(button.getAttribute("data-callauth-copy")).then(function () {
        button.classList.add("callauth-copied");
        if (said) { said.textContent = button.getAttribute("data-text-copied"); }
        window.setTimeout(function () {
          button.classList.remove("callauth-copied");
          if (said) { said.textContent = ""; }
        }, 3000);
      }, function () { /* nothing copied: the number is on the screen */ });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-callauth-copy]"), setUpCopy);

  // -- the flow ----------------------------------------------------------------------------

  var root = document.getElementById("callauth-challenge");
  var form = document.getElementById("callauth-complete");
  if (!root || !form || !window.fetch) { return; }
  var sandbox = root.querySelector("form.callauth-sandbox");
  var statusUrl = root.dataset.statusUrl;
  var statusLine = document.getElementById("callauth-status");
  var busy = false; // a finishing request (a simulated call or "complete") is in flight
  var done = false; // the page is leaving
  var POLL_MS = 1000;  // a 1 s poll keeps the time from the call to logged in under 1.5 s at p95 (docs/benchmarks.rst)

  // The page's look for a state: what is not for it is hidden, for screen readers too.
  function show(state) {
    root.dataset.state = state;
    Array.prototype.forEach.call(root.querySelectorAll("[data-callauth-when]"), function (part) {
      part.hidden = part.getAttribute("data-callauth-when") !== state;
    });
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
      if (result.body.error === "login_failed") {
        // The flow can be finished again: say so, and give the button back, rather than
        // reloading into the same failure over and over.
        statusLine.textContent = result.body.message;
        root.removeAttribute("data-logging-in");
        form.hidden = false;
        return;
      }
      leave();
    }).catch(function () { leave(); });
  }

  function confirmed() {
    show("confirmed");
    root.setAttribute("data-logging-in", "");
    form.hidden = true; // the script logs in by itself now
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
  if (root.dataset.status === "pending") { window.setTimeout(poll, POLL_MS); }
  else if (root.dataset.status === "confirmed") { confirmed(); window.setTimeout(poll, POLL_MS); }
})();
