// Draws every plotly figure of the page: an element with data-chart="<id>" gets the figure
// stored as JSON in <script type="application/json" id="<id>"> (made with json_script).
(function () {
  "use strict";
  function draw() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach((element) => {
      const source = document.getElementById(element.dataset.chart);
      if (!source) return;
      const figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(element, figure.data, figure.layout, {
        responsive: true,
        displaylogo: false,
        displayModeBar: false,
        // Month names and toolbar in the page's language (plotly-locale-*.js registers them).
        locale: document.documentElement.lang || "en",
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
