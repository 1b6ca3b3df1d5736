// Draw every plotly figure embedded in the page; a click on a point opens that verdict's report.
(function () {
  if (!window.Plotly) {
    document.querySelectorAll(".chart").forEach(function (el) {
      el.textContent = "Charts need plotly.js, served from the installed plotly package: pip install plotly.";
    });
    return;
  }
  document.querySelectorAll("script.figure").forEach(function (node) {
    var figure = JSON.parse(node.textContent);
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
