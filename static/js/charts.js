/* Value charts. Each <canvas data-chart="ID"> is drawn from the JSON spec in
   <script type="application/json" id="ID"> (Django's json_script; data only, never executed,
   so the strict CSP holds). A spec: {type: "bar", labels: [...], datasets: [{label, data,
   flags?, color?}], horizontal?, threshold?: {value, label}, x_title?, y_title?, compact?,
   stacked?, legend?, partial_index?}. Data may be numbers or decimal strings (money
   stays exact up to the JSON; only the drawing uses floats). A dataset's color "name" is the CSS
   custom property --chart-name on the chart box (static/css/charts.css), "bar" by default;
   flags[i] draws bar i in --chart-flag; the bar at partial_index (the month so far) is faded. */
(function () {
  "use strict";

  function cssVar(element, name, fallback) {
    var value = window.getComputedStyle(element).getPropertyValue(name).trim();
    return value || fallback;
  }

  // A dashed line across the whole plot at a target value (e.g. LTV/CAC 3), with its label.
  var thresholdLine = {
    id: "threshold",
    afterDatasetsDraw: function (chart, args, options) {
      if (!options || options.value === undefined) return;
      var horizontal = chart.options.indexAxis === "y";
      var scale = chart.scales[horizontal ? "x" : "y"];
      var area = chart.chartArea;
      var at = scale.getPixelForValue(options.value);
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = options.color;
      ctx.fillStyle = options.color;
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      if (horizontal) {
        ctx.moveTo(at, area.top);
        ctx.lineTo(at, area.bottom);
      } else {
        ctx.moveTo(area.left, at);
        ctx.lineTo(area.right, at);
      }
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.textAlign = "right";
      ctx.fillText(options.label, horizontal ? at - 4 : area.right - 4, horizontal ? area.top + 12 : at - 6);
      ctx.restore();
    }
  };

  // "#rrggbb" at about 45% opacity, for the bars of a period that is not over yet.
  function faded(colour) {
    return /^#[0-9a-f]{6}$/i.test(colour) ? colour + "73" : colour;
  }

  function axisTitle(text) {
    return text ? { display: true, text: text } : { display: false };
  }

  function build(canvas, spec) {
    var box = canvas.parentElement || canvas;
    var bar = cssVar(box, "--chart-bar", "#4263eb");
    var flag = cssVar(box, "--chart-flag", "#e03131");
    var line = cssVar(box, "--chart-line", "#2b8a3e");
    var grid = cssVar(box, "--chart-grid", "#e9ecef");
    var text = cssVar(box, "--chart-text", "#495057");
    var horizontal = Boolean(spec.horizontal);
    var valueAxis = horizontal ? "x" : "y";
    var categoryAxis = horizontal ? "y" : "x";

    var partial = spec.partial_index;
    var datasets = (spec.datasets || []).map(function (set) {
      var flags = set.flags || [];
      var colour = set.color ? cssVar(box, "--chart-" + set.color, bar) : bar;
      return {
        type: "bar",
        label: set.label,
        data: set.data.map(Number),
        backgroundColor: set.data.map(function (value, i) {
          var fill = flags[i] ? flag : colour;
          return i === partial ? faded(fill) : fill;
        }),
        borderRadius: 3,
        barPercentage: spec.compact ? 1.0 : 0.8,
        categoryPercentage: spec.compact ? 1.0 : 0.8
      };
    });

    var scales = {};
    var stacked = Boolean(spec.stacked);
    scales[categoryAxis] = { stacked: stacked, title: axisTitle(horizontal ? spec.y_title : spec.x_title), grid: { display: false }, ticks: { color: text } };
    scales[valueAxis] = { stacked: stacked, beginAtZero: true, title: axisTitle(horizontal ? spec.x_title : spec.y_title), grid: { color: grid }, ticks: { color: text, precision: 0 } };
    if (spec.threshold) {
      delete scales[valueAxis].ticks.precision;
      // keep the target visible even when every bar is below it
      scales[valueAxis].suggestedMax = spec.threshold.value * 1.2;
    }

    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: Boolean(spec.legend), labels: { color: text } }, threshold: spec.threshold ? { value: spec.threshold.value, label: spec.threshold.label, color: line } : false },
        scales: scales
      },
      plugins: [thresholdLine]
    });
  }

  function drawAll(root) {
    if (!window.Chart) return;
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.chartDrawn) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var spec;
      try {
        spec = JSON.parse(source.textContent);
      } catch (error) {
        return;
      }
      build(canvas, spec);
      canvas.dataset.chartDrawn = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  // After an htmx swap: an outerHTML swap's settle event comes from the element it replaced, which
  // is no longer in the page, so look in the whole document (drawn canvases are skipped).
  document.addEventListener("htmx:afterSettle", function () { drawAll(document); });
})();
