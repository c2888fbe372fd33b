// The challenge page's script: countdowns, copy buttons, and the flow.
//
// The flow: follows the status and finishes the login by itself once the call is
// confirmed. Where the server offers it (data-events-url: an ASGI site), the page holds
// one events stream and asks nothing while it waits; everywhere else, and whenever the
// stream ends without saying how the flow ended (a proxy cut it, the server restarted),
// it polls the status as often as the server's poll_after says. Without JavaScript the page still works: the "I have called" button posts
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
  var eventsUrl = root.dataset.eventsUrl;
  var busy = false; // a finishing request (a simulated call or "complete") is in flight
  var done = false; // the page is leaving
  var polling = false; // the poll loop runs (never twice)
  var streaming = false; // the events stream is open
  // The least time between two polls: the server's poll_after, never under a second
  // (a 1 s poll keeps the time from the call to logged in under 1.5 s at p95, docs/benchmarks.rst).
  var POLL_MS = 1000;
  var pollAfterMs = afterMs(root.dataset.pollAfter);

  function afterMs(seconds) {
    var value = parseFloat(seconds);
    return isFinite(value) ? Math.max(POLL_MS, value * 1000) : POLL_MS;
  }

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
      if (result.body.error === "not_confirmed") {
        statusLine.textContent = result.body.message;
        if (!streaming) { startPolling(pollAfterMs); } // keep following the flow, whatever ended the stream
        return;
      }
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

  // What a status (from the stream or a poll) means for the page; false: keep waiting.
  function follow(status) {
    if (busy || done || status === "pending") { return false; }
    if (status === "confirmed") { confirmed(); } else { leave(); }
    return true;
  }

  // One loop for the page's life once it polls; it asks nothing while a finishing request
  // is in flight, and an answer that comes back after one started is stale: it is ignored.
  function poll() {
    if (done) { return; }
    if (busy) { window.setTimeout(poll, pollAfterMs); return; }
    var wait = pollAfterMs;
    fetch(statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 429) {
          // slow_down: this page polled faster than the server allows; wait as it says.
          wait = Math.max(pollAfterMs, 1000 * (parseInt(response.headers.get("Retry-After"), 10) || 1));
          return null;
        }
        return response.json();
      })
      .then(function (body) {
        if (!body) { return; }
        if (body.poll_after !== undefined) { pollAfterMs = afterMs(body.poll_after); wait = pollAfterMs; }
        follow(body.status);
      }, function () { wait = pollAfterMs * 2; })
      .then(function () { window.setTimeout(poll, wait); });
  }

  function startPolling(delay) {
    if (polling) { return; }
    polling = true;
    window.setTimeout(poll, delay);
  }

  // The stream: each status event is the flow's state as the database says now. Once it
  // says the flow ended, or the stream fails, it is closed (EventSource would reconnect on
  // its own) and, unless the page acted on it, the page polls.
  function listen() {
    var source = new EventSource(eventsUrl);
    var closed = false;
    streaming = true;
    function close(acted) {
      if (closed) { return; }
      closed = true;
      streaming = false;
      source.close();
      if (!acted) { startPolling(0); }
    }
    source.addEventListener("status", function (event) {
      var body;
      try { body = JSON.parse(event.data); } catch (e) { close(false); return; }
      if (body.status === "pending") { return; }
      close(follow(body.status));
    });
    source.addEventListener("error", function () { close(false); });
  }

  function intercept(element, send) {
    if (!element) { return; }
    element.addEventListener("submit", function (event) { event.preventDefault(); send(); });
  }

  intercept(form, complete);
  intercept(sandbox, simulateCall);
  if (root.dataset.status === "confirmed") { confirmed(); startPolling(pollAfterMs); }
  else if (root.dataset.status === "pending") {
    if (eventsUrl && window.EventSource) { listen(); } else { startPolling(pollAfterMs); }
  }
})();
