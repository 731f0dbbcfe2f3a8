/* Lifecycle CRM behaviour. No inline scripts (CSP): everything hooks up from here. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function toast(text, level) {
    var box = document.getElementById("toasts");
    if (!box || !text) return;
    var item = document.createElement("div");
    item.className = "toast toast--" + (level || "info");
    item.setAttribute("data-toast", "");
    var p = document.createElement("p");
    p.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast__close";
    close.setAttribute("data-dismiss", "");
    close.setAttribute("aria-label", document.body.dataset.dismissText || "×");
    close.textContent = "×";
    item.appendChild(p);
    item.appendChild(close);
    box.appendChild(item);
    scheduleDismiss(item);
  }

  function dismiss(item) {
    item.classList.add("is-leaving");
    window.setTimeout(function () { item.remove(); }, 300);
  }

  function scheduleDismiss(item) {
    // Errors stay until closed; the rest fade after a few seconds.
    if (item.classList.contains("toast--error")) return;
    window.setTimeout(function () { dismiss(item); }, 6000);
  }

  document.addEventListener("click", function (event) {
    var closeButton = event.target.closest("[data-dismiss]");
    if (closeButton) {
      var item = closeButton.closest("[data-toast]");
      if (item) dismiss(item);
      return;
    }
    var toggle = event.target.closest("[data-nav-toggle]");
    if (toggle) {
      var nav = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      if (nav) nav.classList.toggle("is-open", open);
      return;
    }
    // Close open dropdowns (<details data-dropdown>) when clicking elsewhere.
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (details) {
      if (!details.contains(event.target)) details.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (details) {
      details.removeAttribute("open");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-toast]").forEach(scheduleDismiss);
  });

  // htmx: tell the user when a request fails instead of silently doing nothing.
  // (The script is deferred, so <body> exists when it runs.)
  (function () {
    var body = document.body;
    body.addEventListener("htmx:responseError", function (event) {
      var status = event.detail.xhr ? event.detail.xhr.status : 0;
      toast(status === 403 ? body.dataset.forbiddenText : body.dataset.errorText, "error");
    });
    body.addEventListener("htmx:sendError", function () {
      toast(body.dataset.offlineText, "error");
    });
  })();
})();
