// Small progressive enhancements; every page works without this file.
document.addEventListener("submit", function (ev) {
  var btn = ev.submitter;
  var msg = btn && btn.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
  }
});

// Charts: <div data-chart="kind" data-chart-src="/api/..."> is drawn with ECharts from the
// same JSON the API serves. The table beside each chart holds the same figures.
function drawCharts() {
  if (typeof echarts === "undefined") return;
  document.querySelectorAll("[data-chart-src], [data-chart-json]").forEach(function (el) {
    if (el.getAttribute("data-drawn")) return;
    el.setAttribute("data-drawn", "1");
    var draw = function (data) {
      var option = chartOption(el.getAttribute("data-chart"), el.getAttribute("data-title"), data);
      if (!option) return;
      var chart = echarts.init(el, null, { renderer: "svg" });
      chart.setOption(option);
      window.addEventListener("resize", function () { chart.resize(); });
    };
    // Small summaries come with the page; larger data from the API.
    if (el.hasAttribute("data-chart-json")) {
      draw(JSON.parse(el.getAttribute("data-chart-json")));
      return;
    }
    fetch(el.getAttribute("data-chart-src"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(draw);
  });
}

function chartOption(kind, title, data) {
  if (kind.indexOf("funnel:") === 0) {
    // C-5: one channel and campaign's funnel; the step losing the most users in red.
    var f = (data.funnels || [])[Number(kind.slice(7))];
    if (!f) return null;
    var steps = ["exposure", "click", "conversion", "repurchase"];
    return {
      title: { text: title, textStyle: { fontSize: 14 } },
      tooltip: { trigger: "item" },
      series: [{ type: "funnel", sort: "none", left: "10%", width: "80%", label: { formatter: "{b}: {c}" },
        data: steps.map(function (s, k) {
          return { name: s, value: f.users[k], itemStyle: { color: f.biggest_drop === s ? "#d92d20" : "#1570ef" } };
        }) }]
    };
  }
  if (kind === "funnel-total") {
    // C-7: the funnel over every channel ({labels, values}).
    return {
      title: { text: title, textStyle: { fontSize: 14 } },
      tooltip: { trigger: "item" },
      series: [{ type: "funnel", sort: "none", left: "10%", width: "80%", label: { formatter: "{b}: {c}" },
        data: data.labels.map(function (l, k) { return { name: l, value: data.values[k] }; }) }]
    };
  }
  if (kind === "bars" || kind === "histogram") {
    // C-3, C-7: one bar per label ({labels, values}), e.g. customers per value bucket.
    return {
      title: { text: title, textStyle: { fontSize: 14 } },
      tooltip: {},
      xAxis: { type: "category", data: data.labels, axisLabel: { rotate: 30 } },
      yAxis: { type: "value" },
      series: [{ type: "bar", data: data.values, itemStyle: { color: "#1570ef" } }]
    };
  }
  var rows = (data.report && data.report.channels) || [];
  var names = rows.map(function (r) { return r.channel; });
  if (kind === "roi") {
    return {
      title: { text: title, textStyle: { fontSize: 14 } },
      tooltip: {},
      xAxis: { type: "category", data: names },
      yAxis: { type: "value" },
      series: [{ type: "bar", data: rows.map(function (r) {
        return { value: r.roi === null ? 0 : Number(r.roi.toFixed(2)), itemStyle: { color: r.top ? "#067647" : "#98a2b3" } };
      }) }]
    };
  }
  if (kind === "conversion") {
    var low = data.report.industry_low_pct, high = data.report.industry_high_pct;
    return {
      title: { text: title, textStyle: { fontSize: 14 } },
      tooltip: {},
      xAxis: { type: "category", data: names },
      yAxis: { type: "value", axisLabel: { formatter: "{value}%" } },
      series: [{
        type: "bar",
        data: rows.map(function (r) { return r.conversion_pct === null ? 0 : Number(r.conversion_pct.toFixed(2)); }),
        markArea: { itemStyle: { color: "rgba(21,112,239,0.08)" }, data: [[{ yAxis: low }, { yAxis: high }]] },
        markLine: { symbol: "none", data: [{ yAxis: low }, { yAxis: high }] }
      }]
    };
  }
  return null;
}

window.addEventListener("load", drawCharts);
document.addEventListener("htmx:afterSwap", drawCharts);
