/* Settings page: follows a valuation run by polling its JSON status every 2 seconds until it
   has finished. Plain JS, no inline scripts. */
(function () {
  "use strict";

  var INTERVAL_MS = 2000;

  function update(panel, status) {
    panel.querySelectorAll("[data-field]").forEach(function (element) {
      var value = status[element.dataset.field];
      element.textContent = value === null || value === undefined ? "" : String(value);
      if (element.dataset.field === "error") { element.hidden = !value; }
    });
    var bar = panel.querySelector("[data-field-progress]");
    if (bar) { bar.value = status.progress; bar.textContent = Math.round(status.progress * 100) + "%"; }
    panel.className = "dash-status dash-status-" + status.status;
    var completed = panel.querySelector("[data-show-when-completed]");
    if (completed) { completed.hidden = status.status !== "completed"; }
    // The same run's row in the "last runs" table follows along.
    var row = document.querySelector('[data-run-row="' + status.id + '"]');
    if (row) {
      row.querySelectorAll("[data-run-field]").forEach(function (cell) {
        var value = status[cell.dataset.runField];
        cell.textContent = value === null || value === undefined ? "" : String(value);
      });
    }
    if (status.finished) {
      panel.dataset.finished = "1";
      document.querySelectorAll("[data-recompute-button]").forEach(function (button) { button.disabled = false; });
    }
  }

  function poll(panel) {
    if (panel.dataset.finished === "1") { return; }
    fetch(panel.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (status) {
        update(panel, status);
        if (!status.finished) { window.setTimeout(function () { poll(panel); }, INTERVAL_MS); }
      })
      .catch(function () {
        // A network hiccup: try again a little later rather than giving up.
        window.setTimeout(function () { poll(panel); }, INTERVAL_MS * 3);
      });
  }

  function start() {
    var panel = document.getElementById("run-status");
    if (panel && panel.dataset.finished !== "1") { window.setTimeout(function () { poll(panel); }, INTERVAL_MS); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
