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

  // Tables wider than their card scroll inside a .table-scroll; mark the sides that hide columns so
  // the CSS can fade that edge (static/css/app.css). Kept up to date on scroll, resize and htmx swaps.
  function markScroll(box) {
    var hidden = box.scrollWidth - box.clientWidth;
    box.classList.toggle("is-more-start", hidden > 1 && box.scrollLeft > 1);
    box.classList.toggle("is-more-end", hidden > 1 && box.scrollLeft < hidden - 1);
    makeKeyboardScrollable(box, hidden > 1);
  }
  // A box that scrolls must be reachable with Tab, so keyboard users can scroll it with the arrow
  // keys; screen readers announce it as a region named after its table's caption or its card's heading.
  function makeKeyboardScrollable(box, scrolls) {
    if (!scrolls) {
      if (box.dataset.scrollFocus) {
        ["tabindex", "role", "aria-label"].forEach(function (name) { box.removeAttribute(name); });
        delete box.dataset.scrollFocus;
      }
      return;
    }
    if (box.dataset.scrollFocus) return;
    var named = box.querySelector("caption") || (box.closest("section, .card, .table-card") || box).querySelector("h2, h3");
    box.setAttribute("tabindex", "0");
    box.setAttribute("role", "region");
    if (named && named.textContent.trim()) box.setAttribute("aria-label", named.textContent.trim());
    box.dataset.scrollFocus = "1";
  }
  var resized = window.ResizeObserver ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { markScroll(entry.target); });
  }) : null;
  function watchScrollBoxes(root) {
    root.querySelectorAll(".table-scroll").forEach(function (box) {
      markScroll(box);
      if (resized) resized.observe(box);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { watchScrollBoxes(document); });
  document.addEventListener("scroll", function (event) {
    if (event.target.classList && event.target.classList.contains("table-scroll")) markScroll(event.target);
  }, true);
  document.addEventListener("htmx:load", function (event) { watchScrollBoxes(event.target.parentNode || document); });

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
