// Follow Airflow's color mode. Inside Airflow's frame (same origin) the parent page says it: its
// root element carries the "dark" class. Opened on their own, the pages read the mode Airflow keeps
// in localStorage ("theme": light, dark or system), and the system's preference for "system".
(function () {
  var dark = false;
  try {
    var framed = window.parent && window.parent !== window;
    if (framed) {
      var root = window.parent.document.documentElement;
      dark = root.classList.contains("dark") || root.style.colorScheme === "dark";
    } else {
      var mode = window.localStorage.getItem("theme");
      dark = mode === "dark" || ((mode === null || mode === "system") &&
        !!window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
    }
  } catch (e) { dark = false; }
  if (dark) { document.documentElement.classList.add("dark"); }
})();
