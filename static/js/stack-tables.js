// Phones: a table marked .stack shows each row as a small card (cockpit.css). Each cell is
// labelled with its column's heading, unless the template already gave it a data-label.
(function () {
  "use strict";
  function label(table) {
    const heads = [];
    const row = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!row) return;
    for (const th of row.cells) {
      const text = th.textContent.replace(/\s+/g, " ").trim();
      for (let i = 0; i < (th.colSpan || 1); i += 1) heads.push(text);
    }
    for (const body of [...table.tBodies, table.tFoot].filter(Boolean)) {
      for (const tr of body.rows) {
        let column = 0;
        for (const cell of tr.cells) {
          // A footer's first cell names the row ("Total"): it needs no column label.
          const footerName = body === table.tFoot && column === 0;
          if (!cell.hasAttribute("data-label") && cell.tagName === "TD" && heads[column] && !footerName) cell.setAttribute("data-label", heads[column]);
          column += cell.colSpan || 1;
        }
      }
    }
  }
  document.querySelectorAll("table.stack").forEach(label);
})();
