/* Segment dashboard: draws the plotly figures embedded as JSON (json_script) and opens a
   customer's cockpit when a point of the segment scatter is clicked. No inline scripts. */
(function () {
  "use strict";

  // locale: month names and toolbar in the page's language (plotly-locale-*.js registers them).
  var CONFIG = {
    responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"],
    locale: document.documentElement.lang || "en"
  };

  function webglAvailable() {
    try {
      var canvas = document.createElement("canvas");
      return !!(window.WebGLRenderingContext && (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
    } catch (error) {
      return false;
    }
  }

  var HAS_WEBGL = webglAvailable();

  function draw(element) {
    var source = document.getElementById(element.dataset.figure);
    if (!source || typeof Plotly === "undefined") { return; }
    var figure = JSON.parse(source.textContent);
    if (!HAS_WEBGL) {
      // Without WebGL (old tablets, remote desktops) draw the same points as SVG; the server
      // never sends more than a few thousand, which SVG still handles.
      (figure.data || []).forEach(function (trace) { if (trace.type === "scattergl") { trace.type = "scatter"; } });
      element.dataset.renderer = "svg";
    }
    Plotly.newPlot(element, figure.data || [], figure.layout || {}, CONFIG).then(function () {
      element.dataset.drawn = "true";
    });
    var urlTemplate = element.dataset.clickUrl;
    if (urlTemplate) {
      element.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        if (!point || !point.customdata) { return; }
        var id = parseInt(point.customdata[0], 10);
        if (!isNaN(id)) { window.location.assign(urlTemplate.replace("{id}", String(id))); }
      });
    }
  }

  function autosubmit() {
    document.querySelectorAll("[data-autosubmit]").forEach(function (control) {
      control.addEventListener("change", function () {
        var form = control.form;
        if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
      });
    });
  }

  function start() {
    document.querySelectorAll("[data-figure]").forEach(draw);
    autosubmit();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
