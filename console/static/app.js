// Veref console: progressive enhancement only. Every page works without it.
"use strict";
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("button[data-copy]");
  if (!btn) return;
  var src = document.getElementById(btn.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  var text = src ? src.textContent : "";
  var done = function (ok) {
    if (status) status.textContent = ok ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
  };
  // Selected at once, so the key can be copied by hand even if the
  // clipboard API is refused or never answers.
  selectText(src);
  if (status) status.textContent = "Selected; copying…";
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, function () { selectText(src); done(false); });
  } else {
    selectText(src);
    done(false);
  }
});

function selectText(el) {
  if (!el) return;
  var r = document.createRange();
  r.selectNodeContents(el);
  var s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}

// "Every scope" and single scopes exclude each other.
document.addEventListener("change", function (ev) {
  var t = ev.target;
  if (t.id === "scope-all" && t.checked) {
    document.querySelectorAll("input[name=scope]").forEach(function (c) { c.checked = false; });
  } else if (t.name === "scope" && t.checked) {
    var all = document.getElementById("scope-all");
    if (all) all.checked = false;
  }
});

// Production sign-in: mount Clerk's component once its script has loaded.
window.addEventListener("load", function () {
  var el = document.getElementById("clerk-sign-in");
  if (!el || !window.Clerk) return;
  var after = el.getAttribute("data-after") || "/app/keys";
  window.Clerk.load().then(function () {
    if (window.Clerk.user) { window.location.assign(after); return; }
    el.textContent = "";
    window.Clerk.mountSignIn(el, { forceRedirectUrl: after, signUpForceRedirectUrl: after });
  });
});

// Tells a waiting reader (the browser tests) that the handlers above are
// attached: a deferred script may run after the page is already visible.
document.documentElement.setAttribute("data-ready", "1");
