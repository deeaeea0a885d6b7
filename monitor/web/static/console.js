// Keep lists and timelines current without a page reload: any element with
// data-refresh="URL" is replaced by the server-rendered fragment every data-every ms.
// Plain script, no build step; pages work without it (a reload shows the same).
(function () {
  function refresh(el) {
    var url = el.getAttribute("data-refresh");
    var every = parseInt(el.getAttribute("data-every") || "5000", 10);
    var select = el.getAttribute("data-select");
    setInterval(function () {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          if (select) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var part = doc.querySelector(select);
            if (part) html = part.outerHTML; else return;
          }
          if (el.innerHTML !== html) el.innerHTML = html;
        })
        .catch(function () {});
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  });
})();
