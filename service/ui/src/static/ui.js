// vcds web UI live updates: every few seconds, fetch this page again and swap in the fresh
// content of each [data-live] section (phases, nodes, load, events). Sections holding the
// element being typed in are left alone. Without JavaScript the pages work, only static.
(function () {
  "use strict";
  var PERIOD_MS = 3000;
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.status === 404) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var next = fresh.getElementById(el.id);
          if (next && next.innerHTML !== el.innerHTML && !el.contains(document.activeElement)) {
            el.innerHTML = next.innerHTML;
          }
        });
      })
      .catch(function () { /* the server is away for a moment: try again next period */ })
      .then(function () { window.setTimeout(refresh, PERIOD_MS); });
  }
  if (document.querySelector("[data-live]")) window.setTimeout(refresh, PERIOD_MS);
})();
