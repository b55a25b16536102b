/* fscert audit report: the grid of generated images (sorting, filtering, pagination) and tiles.
 *
 * The data comes from data.js (window.FSCERT_AUDIT, columns of per-image values), loaded with a
 * script tag because Chromium refuses to fetch local files on file://. Only the current page's
 * cards are in the DOM. Static tiles (<span class="tile-slot" data-set data-slot>) are filled
 * from the sprite sheets; tiles are placed through the CSSOM because the page's
 * Content-Security-Policy forbids inline style attributes. No network request is ever made.
 */
(function () {
  "use strict";

  var D = window.FSCERT_AUDIT;
  if (!D) {
    return;
  }
  var $ = function (id) { return document.getElementById(id); };
  var sprites = D.sprites || {};

  var tile = window.FSCERT_TILES.tile;          // tiles.js
  var div = window.FSCERT_TILES.textDiv;

  function fillSlots(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".tile-slot[data-set]"), function (s) {
      var info = sprites[s.getAttribute("data-set")];
      if (!info) {
        s.classList.add("missing");
        s.textContent = "not available";
        return;
      }
      s.replaceWith(tile(info, Number(s.getAttribute("data-slot")), s.getAttribute("data-label") || ""));
    });
  }

  // ---------------------------------------------------------------- grid state

  var n = D.n;
  var psnr = Float64Array.from(D.psnr, Number);      // "Infinity" → Infinity
  var st = { sort: "psnr-desc", flags: D.gammaNames.map(function () { return "any"; }), train: null,
             page: 0, size: 48, shown: [] };
  var orders = {};

  function order(key) {
    if (orders[key]) { return orders[key]; }
    var idx = Array.from({ length: n }, function (_, i) { return i; });
    var f = {
      "psnr-desc": function (a, b) { return (psnr[b] - psnr[a]) || a - b; },
      "psnr-asc": function (a, b) { return (psnr[a] - psnr[b]) || a - b; },
      "index-asc": function (a, b) { return a - b; },
      "index-desc": function (a, b) { return b - a; }
    }[key];
    idx.sort(function (a, b) {
      var d = f(a, b);
      return d !== d ? (psnr[a] === psnr[b] ? a - b : 0) : d;   // Infinity − Infinity = NaN: equal
    });
    orders[key] = idx;
    return idx;
  }

  /** "#12", "12" or a training image's name → its index; null for an empty filter, -1 for no match. */
  function trainIndex(text) {
    var s = (text || "").trim();
    if (!s) { return null; }
    var m = /^#?(\d+)$/.exec(s);
    if (m && D.slotName.indexOf(s) < 0) { return Number(m[1]); }
    var k = D.slotName.indexOf(s);
    return k < 0 ? -1 : D.slotTrain[k];
  }

  function matches(i) {
    for (var j = 0; j < st.flags.length; j++) {
      if (st.flags[j] === "copy" && !D.copy[j][i]) { return false; }
      if (st.flags[j] === "novel" && D.copy[j][i]) { return false; }
    }
    return st.train === null || D.nearest[i] === st.train;
  }

  function card(i) {
    var c = document.createElement("div");
    c.className = "card";
    c.setAttribute("data-index", String(i));
    c.setAttribute("data-train", String(D.nearest[i]));
    var pair = document.createElement("div");
    pair.className = "pair";
    pair.appendChild(tile(sprites.gen, i, "generated " + D.name[i]));
    pair.appendChild(tile(sprites.train, D.trainSlot[i], "training image " + D.slotName[D.trainSlot[i]]));
    c.appendChild(pair);
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.appendChild(div("idx gen-name", D.name[i]));
    var tname = D.slotName[D.trainSlot[i]];
    meta.appendChild(div("small train-name", "nearest training image: " + tname +
                                             (tname === "#" + D.nearest[i] ? "" : " (#" + D.nearest[i] + ")")));
    meta.appendChild(div("num", "PSNR " + (psnr[i] === Infinity ? "∞ (identical)" : psnr[i].toFixed(2) + " dB")));
    var badges = document.createElement("div");
    badges.className = "badges";
    var copyAny = false;
    D.gammaNames.forEach(function (g, j) {
      var b = document.createElement("span");
      var copy = D.copy[j][i] === 1;
      copyAny = copyAny || copy;
      b.className = "badge " + (copy ? "copy" : "novel");
      b.textContent = (copy ? "near-copy" : "not a copy") + " at " + g + " dB";
      badges.appendChild(b);
    });
    meta.appendChild(badges);
    c.appendChild(meta);
    if (copyAny) { c.classList.add("is-copy"); }
    return c;
  }

  function render() {
    var ord = order(st.sort);
    st.shown = ord.filter(matches);
    var pages = Math.max(1, Math.ceil(st.shown.length / st.size));
    st.page = Math.min(Math.max(0, st.page), pages - 1);
    var grid = $("grid");
    grid.textContent = "";
    var frag = document.createDocumentFragment();
    st.shown.slice(st.page * st.size, (st.page + 1) * st.size).forEach(function (i) { frag.appendChild(card(i)); });
    grid.appendChild(frag);
    $("count-shown").textContent = String(st.shown.length);
    $("page").textContent = String(st.page + 1);
    $("page-count").textContent = String(pages);
    $("prev-page").disabled = st.page === 0;
    $("next-page").disabled = st.page >= pages - 1;
    var bad = st.train === -1;
    $("train-filter").classList.toggle("invalid", bad);
  }

  function readControls() {
    st.sort = $("sort").value;
    st.flags = D.gammaNames.map(function (_, j) { return $("flag-" + j).value; });
    st.train = trainIndex($("train-filter").value);
    st.size = Number($("page-size").value) || 48;
    st.page = 0;
    render();
  }

  $("controls").addEventListener("change", readControls);
  $("controls").addEventListener("submit", function (e) { e.preventDefault(); readControls(); });
  $("train-filter").addEventListener("input", readControls);
  $("reset-filters").addEventListener("click", function () {
    $("controls").reset();
    readControls();
  });
  $("prev-page").addEventListener("click", function () { st.page -= 1; render(); });
  $("next-page").addEventListener("click", function () { st.page += 1; render(); });
  Array.prototype.forEach.call(document.querySelectorAll("button.show-group"), function (b) {
    b.addEventListener("click", function () {
      $("controls").reset();                                   // its near-copies at the smallest γ, no other filter
      $("train-filter").value = "#" + b.getAttribute("data-train");
      $("flag-0").value = "copy";
      readControls();
      $("browser").scrollIntoView();
    });
  });

  fillSlots(document);
  readControls();
  document.body.dataset.ready = "1";
}());
