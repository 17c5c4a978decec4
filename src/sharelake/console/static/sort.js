// Sortable tables (class "sortable"): a heading's button sorts the rows on screen by that column's
// data-sort values, numbers as numbers; pressing it again reverses the order.
"use strict";

(function () {
  document.querySelectorAll("table.sortable").forEach((table) => {
    const headings = Array.from(table.querySelectorAll("thead th"));
    headings.forEach((heading, column) => {
      const button = heading.querySelector("button.sort");
      if (!button) return;
      button.addEventListener("click", () => {
        const ascending = heading.getAttribute("aria-sort") !== "ascending";
        headings.forEach((h) => h.removeAttribute("aria-sort"));
        heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const value = (row) => row.cells[column].dataset.sort ?? row.cells[column].textContent;
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = value(a), y = value(b);
          if (x === "" || y === "") return x === y ? 0 : x === "" ? 1 : -1; // blanks last
          const nx = Number(x), ny = Number(y);
          const order = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
          return ascending ? order : -order;
        });
        body.append(...rows);
      });
    });
  });
})();
