// Draw every plotly figure embedded in the page; a click on a point opens that verdict's report.
(function () {
  if (!window.Plotly) {
    document.querySelectorAll(".chart").forEach(function (el) {
      el.textContent = "Charts need plotly.js, served from the installed plotly package: pip install plotly.";
    });
    return;
  }
  var dark = document.documentElement.classList.contains("dark");  // set by theme.js
  function darken(layout) {
    var axis = {gridcolor: "#2d3748", zerolinecolor: "#4a5568", linecolor: "#4a5568"};
    layout.font = {color: "#cbd5e0"};
    layout.plot_bgcolor = "#1b222b";
    layout.xaxis = Object.assign({}, layout.xaxis, axis);
    layout.yaxis = Object.assign({}, layout.yaxis, axis);
    return layout;
  }
  document.querySelectorAll("script.figure").forEach(function (node) {
    var figure = JSON.parse(node.textContent);
    if (dark) { darken(figure.layout); }
    var target = document.getElementById(node.dataset.target);
    Plotly.newPlot(target, figure.data, figure.layout, {displaylogo: false, responsive: true});
    target.on("plotly_click", function (event) {
      var links = event.points[0] && event.points[0].customdata;
      var url = links && (links[0] || links[1]);
      if (!url) { return; }
      if (window.mlopsOpen) { window.mlopsOpen(url); } else { window.open(url, "_blank", "noopener"); }
    });
  });
})();
