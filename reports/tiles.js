/* fscert reports: the image tile shared by the certificate report (report.js) and the audit
 * report (audit.js). A tile is a div showing one cell of a PNG sprite sheet, upscaled by the
 * sheet's integer scale; it is placed through the CSSOM because the pages'
 * Content-Security-Policy forbids inline style attributes. fscert.shipped.copy_static writes it in front of
 * each page's own script (report.js, audit.js), so every page still loads one script file.
 */
(function () {
  "use strict";

  /** A div showing tile `slot` of a sprite set `info`, labelled `label`. */
  function tile(info, slot, label) {
    var t = document.createElement("div");
    var sheet = Math.floor(slot / info.perSheet);
    var k = slot - sheet * info.perSheet;
    var col = k % info.cols, row = Math.floor(k / info.cols);
    var w = info.tileW * info.scale, h = info.tileH * info.scale;
    t.className = "tile";
    t.style.width = w + "px";
    t.style.height = h + "px";
    t.style.backgroundImage = "url(\"" + info.sheets[sheet] + "\")";
    t.style.backgroundSize = (info.cols * w) + "px " + (info.rows[sheet] * h) + "px";
    t.style.backgroundPosition = (-col * w) + "px " + (-row * h) + "px";
    t.title = label;
    t.setAttribute("role", "img");
    t.setAttribute("aria-label", label);
    return t;
  }

  /** A div of class `cls` holding `text`. */
  function textDiv(cls, text) {
    var d = document.createElement("div");
    d.className = cls;
    d.textContent = text;
    return d;
  }

  window.FSCERT_TILES = { tile: tile, textDiv: textDiv };
})();
