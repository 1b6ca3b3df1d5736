// Airflow shows these pages in an iframe whose sandbox has neither allow-popups nor
// allow-top-navigation, so there a link to MLflow, Evidently or an Airflow run does nothing.
// The frame is same-origin with Airflow's page, so such a link is followed from that page instead:
// an anchor added to it, clicked, and removed. Opened on their own, the pages are left alone.
(function () {
  var frame = null;
  try { frame = window.frameElement; } catch (e) { return; }
  if (!frame || !frame.hasAttribute("sandbox")) { return; }
  var allowed = (frame.getAttribute("sandbox") || "").split(/\s+/);
  var blocked = {
    _blank: allowed.indexOf("allow-popups") < 0,
    _top: allowed.indexOf("allow-top-navigation") < 0 &&
      allowed.indexOf("allow-top-navigation-by-user-activation") < 0,
  };

  function follow(href, target) {
    var host = target === "_top" ? window.top.document : frame.ownerDocument;
    var anchor = host.createElement("a");
    anchor.href = new URL(href, document.baseURI).href;
    anchor.target = target;
    anchor.rel = "noopener";
    anchor.style.display = "none";
    host.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
  }

  // mlops.js opens a chart point's report through this.
  window.mlopsOpen = function (href) {
    if (blocked._blank) { follow(href, "_blank"); } else { window.open(href, "_blank", "noopener"); }
  };

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[target]") : null;
    var target = link && link.getAttribute("target");
    if (!link || !blocked[target] || event.defaultPrevented) { return; }
    event.preventDefault();
    follow(link.href, target);
  });
})();
