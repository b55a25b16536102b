/* fscert report: client-side sorting, filtering and pagination.
 *
 * The data comes from data.js (window.FSCERT_REPORT, columns of per-image values), loaded with
 * a script tag because Chromium blocks fetch() of local files on file://. Only the current
 * page's cards are in the DOM, so 100,000 images stay fast. Each full sort order is computed
 * once and cached; filtering is one linear pass over it. No network request is ever made.
 *
 * The per-training-image table (D.exposure: one row per training image, sortable per γ,
 * paginated; its first page is also in the HTML) is a searched certificate's exposure table or
 * a listed certificate's "which training images are copied" (then its best tiles come from the
 * generated images: D.exposure.bestSet "gen", bestSlot). Static tiles
 * (<span class="tile-slot" data-set data-slot>) are filled from the sprite sheets in
 * D.sprites (and D.gen). Tiles are placed through the CSSOM: the page's Content-Security-Policy
 * forbids inline style attributes.
 *
 * Per-image badges come from D.badges.codes (computed by fscert.decidability.badge_codes):
 * "novel" is never shown where the decoder cannot reach γ; without D.badges the flags decide
 * copy / "no copy found" (never "novel").
 */
(function () {
  "use strict";

  var D = window.FSCERT_REPORT;
  if (!D) {
    return;
  }
  var $ = function (id) { return document.getElementById(id); };

  // ---------------------------------------------------------------- tiles

  var tile = window.FSCERT_TILES.tile;          // tiles.js
  var line = window.FSCERT_TILES.textDiv;

  function slotPlaceholder(text) {
    var t = document.createElement("span");
    t.className = "tile-slot missing";
    t.textContent = text;
    return t;
  }

  var sprites = D.sprites || {};

  function spriteSet(name) {
    return sprites[name] || (name === "gen" ? D.gen : null);
  }

  /** Replace every static <span class="tile-slot" data-set data-slot> under root by its tile. */
  function fillSlots(root) {
    Array.prototype.forEach.call(root.querySelectorAll(".tile-slot[data-set]"), function (s) {
      var info = spriteSet(s.getAttribute("data-set"));
      if (!info) {
        s.classList.add("missing");
        return;
      }
      s.replaceWith(tile(info, Number(s.getAttribute("data-slot")), s.getAttribute("data-label") || ""));
    });
  }

  // ---------------------------------------------------------------- exposure table (searched)

  function exposureTable() {
    var E = D.exposure;
    var body = $("exposure-body");
    if (!E || !body || !E.n) {
      return;
    }
    var num = function (a) { return Float64Array.from(a, Number); }; // "NaN"/"Infinity" strings → numbers
    var lo = E.lo.map(num), hi = E.hi.map(num), clo = E.cntLo.map(num), chi = E.cntHi.map(num);
    var bestPsnr = num(E.bestPsnr), bestProb = num(E.bestProb);
    var recon = E.recon ? num(E.recon) : null;
    var bestInfo = spriteSet(E.bestSet || "best");
    var bestSlot = function (t) { return E.bestSlot ? E.bestSlot[t] : t; };
    var n = E.n, size = E.pageSize || 25;
    var st = { key: "exp-" + E.defaultGamma, reverse: false, page: 0, order: null };
    var cache = {};
    var up = function (v) { return v !== v ? Infinity : v; };    // unknown upper end: may be 1, ranks first
    var down = function (v) { return v !== v ? -Infinity : v; }; // unknown value: last

    function cmp(x, y) { return x < y ? -1 : (x > y ? 1 : 0); }

    function order(key) {
      if (cache[key]) { return cache[key]; }
      var idx = Array.from({ length: n }, function (_, i) { return i; });
      var parts = key.split("-");
      var j = Number(parts[1]);
      var f = {
        exp: function (a, b) { return cmp(up(hi[j][b]), up(hi[j][a])) || cmp(down(lo[j][b]), down(lo[j][a])) || a - b; },
        cnt: function (a, b) { return cmp(up(chi[j][b]), up(chi[j][a])) || cmp(down(clo[j][b]), down(clo[j][a])) || a - b; },
        psnr: function (a, b) { return cmp(down(bestPsnr[b]), down(bestPsnr[a])) || a - b; },
        prob: function (a, b) { return cmp(down(bestProb[b]), down(bestProb[a])) || a - b; },
        recon: function (a, b) { return recon ? (cmp(down(recon[b]), down(recon[a])) || a - b) : a - b; },
        index: function (a, b) { return a - b; }
      }[parts[0]];
      idx.sort(f);
      cache[key] = idx;
      return idx;
    }

    function cell(text, cls) {
      var td = document.createElement("td");
      td.className = cls || "num";
      td.textContent = text;
      return td;
    }

    function row(t, rank) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-train", String(t));
      tr.appendChild(cell(String(rank)));
      var td = document.createElement("td");
      var pair = document.createElement("div");
      pair.className = "pair";
      pair.appendChild(sprites.train ? tile(sprites.train, t, "training image #" + t)
        : slotPlaceholder("training image #" + t + " not provided"));
      var listed = E.bestSet === "gen";
      pair.appendChild(E.bestExact[t] && bestInfo && bestSlot(t) >= 0
        ? tile(bestInfo, bestSlot(t), (listed ? "closest output" : "best reachable output") + " for training image #" + t)
        : slotPlaceholder(listed ? "no output attributed" : "no image: only a PSNR bound"));
      td.appendChild(pair);
      var idx = line("idx", "#" + t + " ");
      if (E.names[t]) {
        var small = document.createElement("span");
        small.className = "small";
        small.textContent = E.names[t];
        idx.appendChild(small);
      }
      td.appendChild(idx);
      tr.appendChild(td);
      for (var j = 0; j < E.gammaNames.length; j++) {
        tr.appendChild(cell(E.expText[j][t]));
        tr.appendChild(cell(E.cntText[j][t]));
      }
      tr.appendChild(cell(E.bestText[t]));
      tr.appendChild(cell(E.probText[t]));
      if (E.reconText) {
        tr.appendChild(cell(E.reconText[t]));
      }
      return tr;
    }

    var pages = Math.max(1, Math.ceil(n / size));
    function render() {
      var all = order(st.key);
      st.page = Math.min(Math.max(0, st.page), pages - 1);
      var frag = document.createDocumentFragment();
      for (var p = st.page * size; p < Math.min(n, (st.page + 1) * size); p++) {
        var k = st.reverse ? n - 1 - p : p;
        frag.appendChild(row(all[k], k + 1));
      }
      body.replaceChildren(frag);
      $("exposure-page").textContent = String(st.page + 1);
      $("exposure-pages").textContent = String(pages);
      $("exposure-prev").disabled = st.page === 0;
      $("exposure-next").disabled = st.page >= pages - 1;
      Array.prototype.forEach.call(document.querySelectorAll("#exposure-table button.sort"), function (b) {
        var on = b.getAttribute("data-sort") === st.key;
        b.classList.toggle("sorted", on);
        b.parentNode.setAttribute("aria-sort", on ? (st.reverse ? "ascending" : "descending") : "none");
      });
    }

    Array.prototype.forEach.call(document.querySelectorAll("#exposure-table button.sort"), function (b) {
      b.addEventListener("click", function () {
        var key = b.getAttribute("data-sort");
        st.reverse = key === st.key ? !st.reverse : false;
        st.key = key;
        st.page = 0;
        render();
      });
    });
    $("exposure-prev").addEventListener("click", function () { st.page -= 1; render(); });
    $("exposure-next").addEventListener("click", function () { st.page += 1; render(); });
    render();
  }

  fillSlots(document);
  exposureTable();
  var grid = $("grid");
  if (grid && D.n) {
    imageGrid(grid);
  }
  // time from navigation start to the first page of cards in the DOM (read by the tests)
  document.body.setAttribute("data-ready", "1");
  document.body.setAttribute("data-first-render-ms", String(Math.round(performance.now())));

  // ---------------------------------------------------------------- the image grid

  function imageGrid(grid) {
    var n = D.n;
    var gammas = D.gammas || [];
    var prob = Float64Array.from(D.prob);
    var psnr = D.psnr ? Float64Array.from(D.psnr, Number) : null; // "Infinity" strings → Infinity
    var nearest = D.nearest;
    var trainSlot = D.trainSlot;
    var flags = D.flags ? D.flags.map(function (c) { return Uint8Array.from(c); }) : null;
    var muir = D.muir ? D.muir.map(function (c) { return Uint8Array.from(c); }) : null;
    var B = D.badges;
    var codes = B ? B.codes.map(function (c) { return Uint8Array.from(c); }) : null;
    // badge code → [css class, text, title]; 0 copy, 1 novel, 2 not decidable, 3 no copy found
    function badgeOf(j, i) {
      var g = gammas[j];
      var code = codes ? codes[j][i] : (flags[j][i] === 1 ? 0 : 3);
      if (code === 0) { return ["copy", "copy", "near-copy: PSNR ≥ " + g + " dB"]; }
      if (code === 1) { return ["novel", "novel", "PSNR < " + g + " dB, and the decoder can reproduce this training image at " + g + " dB"]; }
      if (code === 2) {
        var why = B && B.decidable[j] === false
          ? "the decoder reproduces the training images at a median " + (B.median === null ? "unknown" : Number(B.median).toFixed(1)) + " dB, below γ"
          : "the nearest training image's own reconstruction" + (B && B.reconPsnr && nearest ? " reaches only " + Number(B.reconPsnr[nearest[i]]).toFixed(1) + " dB" : " is below γ");
        return ["undecided", "not decidable", "PSNR < " + g + " dB, but " + why + ": no verdict possible"];
      }
      return ["undecided", "no copy found", "PSNR < " + g + " dB; the decoder's fidelity is not recorded, so this is no evidence of novelty"];
    }

    var el = {
      sort: $("sort"), minProb: $("min-prob"), psnrMin: $("psnr-min"), psnrMax: $("psnr-max"),
      pageSize: $("page-size"), pageInput: $("page-input"), pageCount: $("page-count"),
      shown: $("count-shown"), total: $("count-total"), reset: $("reset-filters"),
      first: $("first-page"), prev: $("prev-page"), next: $("next-page"), last: $("last-page"),
      flagFilters: Array.prototype.slice.call(document.querySelectorAll(".flag-filter"))
    };

    var state = { sort: "prob-desc", page: 0, pageSize: 48 };
    var orders = {};            // sort key → Int32Array of all indices in that order
    var view = new Int32Array(0); // indices that pass the filters, in the current order

    // ---------------------------------------------------------------- sorting and filtering

    function compare(x, y) {
      return x < y ? -1 : (x > y ? 1 : 0);
    }

    function psnrKey(i) {
      var v = psnr[i];
      return v !== v ? -Infinity : v; // NaN sorts last in "highest first"
    }

    function order(key) {
      if (orders[key]) {
        return orders[key];
      }
      var idx = new Int32Array(n);
      for (var i = 0; i < n; i++) { idx[i] = i; }
      var cmp = {
        "prob-desc": function (a, b) { return compare(prob[b], prob[a]) || a - b; },
        "prob-asc": function (a, b) { return compare(prob[a], prob[b]) || a - b; },
        "psnr-desc": function (a, b) { return compare(psnrKey(b), psnrKey(a)) || a - b; },
        "psnr-asc": function (a, b) { return compare(psnrKey(a), psnrKey(b)) || a - b; },
        "index-desc": function (a, b) { return b - a; }
      }[key];
      if (cmp && (psnr || key.indexOf("psnr") !== 0)) {
        idx.sort(cmp);
      }
      orders[key] = idx;
      return idx;
    }

    /** Parse a number input; empty → null; invalid → NaN (and the input is marked). */
    function readNumber(input) {
      if (!input) { return null; }
      var text = input.value.trim().replace(/\u2212/g, "-");
      var v = text === "" ? null : Number(text);
      input.classList.toggle("invalid", v !== null && isNaN(v));
      return v;
    }

    function recompute() {
      var minProb = readNumber(el.minProb);
      var lo = readNumber(el.psnrMin);
      var hi = readNumber(el.psnrMax);
      var wanted = [];
      el.flagFilters.forEach(function (select) {
        var j = Number(select.getAttribute("data-gamma"));
        if (flags && select.value !== "any") {
          wanted.push([flags[j], select.value === "copy" ? 1 : 0]);
        }
      });
      var useProb = minProb !== null && !isNaN(minProb);
      var useLo = psnr && lo !== null && !isNaN(lo);
      var useHi = psnr && hi !== null && !isNaN(hi);
      var all = order(state.sort);
      var out = new Int32Array(n);
      var m = 0;
      for (var k = 0; k < n; k++) {
        var i = all[k];
        if (useProb && !(prob[i] >= minProb)) { continue; }
        if (useLo && !(psnr[i] >= lo)) { continue; }
        if (useHi && !(psnr[i] <= hi)) { continue; }
        var ok = true;
        for (var w = 0; w < wanted.length; w++) {
          if (wanted[w][0][i] !== wanted[w][1]) { ok = false; break; }
        }
        if (ok) { out[m++] = i; }
      }
      view = out.slice(0, m);
      state.page = 0;
      render();
    }

    // ---------------------------------------------------------------- rendering

    function fmtProb(p) {
      return p === 0 ? "0" : p.toPrecision(6);
    }

    function fmtPsnr(v) {
      if (v === Infinity) { return "∞"; }
      if (v !== v) { return "NaN"; }
      return v.toFixed(2);
    }

    function placeholder(text) {
      var t = document.createElement("div");
      t.className = "tile missing";
      t.style.width = (D.gen.tileW * D.gen.scale) + "px";
      t.style.height = (D.gen.tileH * D.gen.scale) + "px";
      t.textContent = text;
      return t;
    }

    function card(i) {
      var c = document.createElement("div");
      c.className = "card";
      c.setAttribute("data-index", String(i));
      var pair = document.createElement("div");
      pair.className = "pair";
      var what = D.gen.source === "latents" ? "latent" : (D.label || "generated image");
      pair.appendChild(tile(D.gen, i, what + " #" + i));
      if (D.train && trainSlot) {
        pair.appendChild(tile(D.train, trainSlot[i], "nearest training image #" + nearest[i]));
      } else if (nearest) {
        pair.appendChild(placeholder("training image #" + nearest[i] + " not provided"));
      } else {
        pair.appendChild(placeholder("no nearest training image (no model)"));
      }
      c.appendChild(pair);

      var meta = document.createElement("div");
      meta.className = "meta";
      meta.appendChild(line("idx", "#" + i));
      meta.appendChild(line("num prob", "p = " + fmtProb(prob[i])));
      if (psnr) {
        meta.appendChild(line("num psnr", "PSNR " + fmtPsnr(psnr[i]) + " dB" + (nearest ? " to train #" + nearest[i] : "")));
      }
      if (D.also && D.also[i]) {
        meta.appendChild(line("also", "also within " + Math.min.apply(null, gammas) + " dB of train #" + D.also[i].join(", #")));
      }
      if (flags) {
        var badges = document.createElement("div");
        badges.className = "badges";
        var anyCopy = false;
        for (var j = 0; j < gammas.length; j++) {
          var copy = flags[j][i] === 1;
          anyCopy = anyCopy || copy;
          var bd = badgeOf(j, i);
          var b = line("badge " + bd[0], "γ" + gammas[j] + " " + bd[1]);
          b.title = bd[2] + (muir ? "; " + (muir[j][i] ? "in" : "not in") + " the M-UIR set" : "");
          badges.appendChild(b);
        }
        c.classList.toggle("is-copy", anyCopy);
        meta.appendChild(badges);
      }
      if (D.reconFlags) {
        var at = [];
        for (var r = 0; r < gammas.length; r++) {
          if (D.reconFlags[r][i] === 1) { at.push(gammas[r]); }
        }
        if (at.length) {
          meta.appendChild(line("recon", "near-copy of a training image's reconstruction at γ " + at.join(", ") + " dB"));
        }
      }
      c.appendChild(meta);
      return c;
    }

    function pageCount() {
      return Math.max(1, Math.ceil(view.length / state.pageSize));
    }

    function render() {
      var pages = pageCount();
      state.page = Math.min(Math.max(0, state.page), pages - 1);
      var start = state.page * state.pageSize;
      var end = Math.min(view.length, start + state.pageSize);
      var frag = document.createDocumentFragment();
      for (var p = start; p < end; p++) {
        frag.appendChild(card(view[p]));
      }
      grid.replaceChildren(frag);
      el.shown.textContent = String(view.length);
      el.total.textContent = String(n);
      el.pageInput.value = String(state.page + 1);
      el.pageCount.textContent = String(pages);
      el.first.disabled = el.prev.disabled = state.page === 0;
      el.next.disabled = el.last.disabled = state.page >= pages - 1;
    }

    function goTo(page) {
      state.page = page;
      render();
    }

    // ---------------------------------------------------------------- events

    var timer = null;
    function later() {
      clearTimeout(timer);
      timer = setTimeout(recompute, 200);
    }

    el.sort.addEventListener("change", function () { state.sort = el.sort.value; recompute(); });
    el.flagFilters.forEach(function (s) { s.addEventListener("change", recompute); });
    [el.minProb, el.psnrMin, el.psnrMax].forEach(function (input) {
      if (input) {
        input.addEventListener("input", later);
        input.addEventListener("change", function () { clearTimeout(timer); recompute(); });
      }
    });
    el.pageSize.addEventListener("change", function () {
      var first = state.page * state.pageSize; // keep the first card of the page in view
      state.pageSize = Number(el.pageSize.value);
      goTo(Math.floor(first / state.pageSize));
    });
    el.first.addEventListener("click", function () { goTo(0); });
    el.prev.addEventListener("click", function () { goTo(state.page - 1); });
    el.next.addEventListener("click", function () { goTo(state.page + 1); });
    el.last.addEventListener("click", function () { goTo(pageCount() - 1); });
    el.pageInput.addEventListener("change", function () {
      var v = parseInt(el.pageInput.value, 10);
      goTo(isNaN(v) ? state.page : v - 1);
    });
    el.reset.addEventListener("click", function () {
      document.getElementById("controls").reset();
      state.sort = el.sort.value;
      state.pageSize = Number(el.pageSize.value);
      recompute();
    });
    document.getElementById("controls").addEventListener("submit", function (e) { e.preventDefault(); });
    document.addEventListener("keydown", function (e) {
      var tag = (e.target && e.target.tagName) || "";
      if (tag === "INPUT" || tag === "SELECT" || e.altKey || e.ctrlKey || e.metaKey) { return; }
      if (e.key === "ArrowRight") { goTo(state.page + 1); }
      if (e.key === "ArrowLeft") { goTo(state.page - 1); }
    });

    state.sort = el.sort.value;
    state.pageSize = Number(el.pageSize.value);
    recompute();
  }
})();
