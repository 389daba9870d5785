// Live pages (billing/views/live.py): htmx polls small fragments while something moves.
// No inline script (CSP): this file only marks the page for tests and shows a stale notice
// when a poll fails, clearing it on the next good answer.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.body.setAttribute("data-live-ready", window.htmx ? "true" : "false");
  });
  document.addEventListener("htmx:sendError", function (event) {
    var target = event.detail && event.detail.elt;
    if (target && target.setAttribute) { target.setAttribute("data-live-stale", "true"); }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.elt;
    if (target && target.removeAttribute) { target.removeAttribute("data-live-stale"); }
  });
})();
