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

// The phone header: the menu folds behind one button below 768 px (CSS decides when).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("menu-toggle");
  var menu = document.getElementById("top-menu");
  if (!button || !menu) return;
  button.addEventListener("click", function () {
    var open = menu.classList.toggle("open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
});

// The report form's enterprise picker: search-as-you-type over the county's registry.
// Picking fills the hidden point_id; typing again clears it (the server checks either way).
document.addEventListener("DOMContentLoaded", function () {
  var input = document.querySelector("input[data-search]");
  if (!input) return;
  var hidden = document.getElementById("point_id");
  var list = document.getElementById("enterprise-options");
  var timer = null;
  function show(items) {
    list.innerHTML = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("data-point", item.point_id);
      button.textContent = item.name;
      button.addEventListener("click", function () {
        input.value = item.name;
        hidden.value = item.point_id;
        list.hidden = true;
      });
      li.appendChild(button);
      list.appendChild(li);
    });
    if (!items.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "名录中没有匹配的企业；如确不在名录中，请勾选下方选项。";
      list.appendChild(none);
    }
    list.hidden = false;
  }
  input.addEventListener("input", function () {
    hidden.value = "";
    clearTimeout(timer);
    var q = input.value.trim();
    if (!q) { list.hidden = true; return; }
    timer = setTimeout(function () {
      fetch(input.getAttribute("data-search") + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(show)
        .catch(function () {});
    }, 200);
  });
});
