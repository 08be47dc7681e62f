/* German for plotly: month and day names on date axes, and the chart toolbar's tooltips.
   Loaded right after plotly.js; charts.js and dashboard.js pick the locale from <html lang>.
   Number separators come with each figure (layout.separators), set by the server. */
(function () {
  "use strict";
  if (!window.Plotly || !window.Plotly.register) { return; }
  window.Plotly.register({
    moduleType: "locale",
    name: "de",
    dictionary: {
      "Autoscale": "Automatisch skalieren",
      "Box Select": "Rechteck auswählen",
      "Compare data on hover": "Beim Überfahren Daten vergleichen",
      "Double-click on legend to isolate one trace": "Doppelklick in der Legende zeigt nur diese Reihe",
      "Double-click to zoom back out": "Doppelklick zoomt wieder heraus",
      "Download plot": "Diagramm herunterladen",
      "Download plot as a png": "Diagramm als PNG herunterladen",
      "Lasso Select": "Lasso-Auswahl",
      "Pan": "Verschieben",
      "Produced with Plotly": "Erstellt mit Plotly",
      "Reset": "Zurücksetzen",
      "Reset axes": "Achsen zurücksetzen",
      "Reset view": "Ansicht zurücksetzen",
      "Show closest data on hover": "Beim Überfahren nächsten Wert zeigen",
      "Snapshot succeeded": "Bild erstellt",
      "Sorry, there was a problem downloading your snapshot!": "Das Bild konnte leider nicht heruntergeladen werden.",
      "Taking snapshot - this may take a few seconds": "Bild wird erstellt – das kann einige Sekunden dauern",
      "Toggle Spike Lines": "Hilfslinien ein-/ausblenden",
      "Toggle show closest data on hover": "Nächsten Wert beim Überfahren ein-/ausblenden",
      "Zoom": "Zoomen",
      "Zoom in": "Vergrößern",
      "Zoom out": "Verkleinern",
      "trace": "Reihe"
    },
    format: {
      days: ["Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"],
      shortDays: ["So", "Mo", "Di", "Mi", "Do", "Fr", "Sa"],
      months: ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
               "Oktober", "November", "Dezember"],
      shortMonths: ["Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"],
      date: "%d.%m.%Y",
      decimal: ",",
      thousands: "."
    }
  });
})();
