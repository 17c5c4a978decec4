// The data page's chart: one small uPlot panel per numeric field (fields rarely share a unit),
// over the records on the page. The numbers come from the page itself (#chart-data), not a request.
"use strict";

(function () {
  const holder = document.getElementById("chart");
  const source = document.getElementById("chart-data");
  if (!holder || !source || typeof uPlot === "undefined") return;
  const chart = JSON.parse(source.textContent);
  const colours = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];

  const sameInstant = chart.x.length > 0 && chart.x[0] === chart.x[chart.x.length - 1]; // x is sorted
  holder.replaceChildren();
  const panels = [];
  chart.series.forEach((series, index) => {
    const panel = document.createElement("figure");
    panel.className = "chart-panel";
    const caption = document.createElement("figcaption");
    caption.textContent = series.label;
    panel.appendChild(caption);
    holder.appendChild(panel);
    const options = {
      width: Math.max(240, panel.clientWidth),
      height: 180,
      legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      // One instant only (one record, or a batch stored at once): uPlot would span years after it.
      scales: { x: { time: true, range: (u, min, max) => (sameInstant ? [chart.x[0] - 60, chart.x[0] + 60] : [min, max]) } },
      // The console shows UTC everywhere (as the API does), so the time axis does too.
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      // The x axis names its clock: device time (uplink receivedAt) or the time the record was stored.
      axes: [
        { stroke: "#57606a", grid: { stroke: "#eaeef2" }, label: chart.axis, labelSize: 20, labelFont: "12px system-ui, sans-serif" },
        { stroke: "#57606a", grid: { stroke: "#eaeef2" }, size: 56 },
      ],
      series: [
        {},
        {
          label: series.label,
          stroke: colours[index % colours.length],
          width: 1.5,
          spanGaps: true,
          points: { show: chart.x.length <= 60, size: 4 },
        },
      ],
    };
    panels.push({ panel, plot: new uPlot(options, [chart.x, series.values], panel) });
  });

  let pending = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      for (const { panel, plot } of panels) plot.setSize({ width: Math.max(240, panel.clientWidth), height: 180 });
    });
  });
})();
