// Keyboard shortcuts for the queue and the item page; "?" lists them. Keys are ignored while typing
// in a field, and with Ctrl/Alt/Meta held (the browser's own shortcuts stay the browser's).
(function () {
  "use strict";

  var QUEUE_KEYS = [
    ["j", "next row"], ["k", "previous row"], ["Enter or o", "open the row's item"],
    ["x", "tick the row (for bulk actions)"], ["a", "assign the row to me"], ["?", "show or hide this help"]
  ];
  var ITEM_KEYS = [
    ["j", "next item in the queue you came from"], ["k", "previous item"], ["a", "assign to me"],
    ["f", "go to the fix form"], ["?", "show or hide this help"]
  ];

  function queueTable() { return document.querySelector("table.queue[data-offset]"); }
  function itemId() {
    var m = window.location.pathname.match(/^\/items\/(\d+)\/$/);
    return m ? m[1] : null;
  }
  function keys() { return queueTable() ? QUEUE_KEYS : (itemId() ? ITEM_KEYS : null); }

  var NOT_TEXT = {checkbox: 1, radio: 1, button: 1, submit: 1, reset: 1, file: 1, image: 1, range: 1, color: 1};

  function typing(evt) {
    var el = evt.target;
    if (!el || !el.closest) return false;
    if (el.isContentEditable || el.closest("textarea, select, [contenteditable]")) return true;
    return el.tagName === "INPUT" && !NOT_TEXT[(el.getAttribute("type") || "text").toLowerCase()];
  }

  function toast(message, level) {
    document.body.dispatchEvent(new CustomEvent("toast", {detail: {message: message, level: level || "success"}}));
  }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  // --- help overlay and the visible "?" hint ---------------------------------------------------
  function help() {
    var box = document.getElementById("kb-help");
    if (box) { box.hidden = !box.hidden; return; }
    box = document.createElement("div");
    box.id = "kb-help";
    box.className = "kb-help";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "Keyboard shortcuts");
    box.setAttribute("data-testid", "kb-help");
    var h = document.createElement("h2");
    h.textContent = "Keyboard shortcuts";
    box.appendChild(h);
    var dl = document.createElement("dl");
    keys().forEach(function (pair) {
      var dt = document.createElement("dt");
      pair[0].split(" or ").forEach(function (k, i) {
        if (i) dt.appendChild(document.createTextNode(" or "));
        var kbd = document.createElement("kbd");
        kbd.textContent = k;
        dt.appendChild(kbd);
      });
      var dd = document.createElement("dd");
      dd.textContent = pair[1];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
    box.appendChild(dl);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link";
    close.textContent = "Close (Esc)";
    close.addEventListener("click", function () { box.hidden = true; });
    box.appendChild(close);
    document.body.appendChild(box);
  }

  function hint() {
    if (!keys() || document.getElementById("kb-hint")) return;
    var b = document.createElement("button");
    b.id = "kb-hint";
    b.type = "button";
    b.className = "kb-hint";
    b.title = "Keyboard shortcuts (?)";
    b.setAttribute("aria-label", "Keyboard shortcuts");
    b.setAttribute("data-testid", "kb-hint");
    b.textContent = "?";
    b.addEventListener("click", help);
    document.body.appendChild(b);
  }

  // --- the queue -------------------------------------------------------------------------------
  var currentId = null; // the row's item id: the table is redrawn by htmx, the id survives that

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr[data-item]")); }

  function currentIndex(list) {
    for (var i = 0; i < list.length; i++) if (list[i].getAttribute("data-item") === currentId) return i;
    return -1;
  }

  function mark(list, i) {
    list.forEach(function (r) { r.classList.remove("kb-current"); r.removeAttribute("aria-current"); });
    var row = list[i];
    if (!row) return;
    currentId = row.getAttribute("data-item");
    row.classList.add("kb-current");
    row.setAttribute("aria-current", "true");
    row.scrollIntoView({block: "nearest"});
  }

  // An item opened from the queue carries the queue's filters and its row, so the item page's j/k
  // walk the same list in the same order.
  function withQueue(href, row) {
    var table = queueTable();
    var params = new URLSearchParams(window.location.search);
    params.delete("pos");
    var offset = table ? parseInt(table.getAttribute("data-offset"), 10) || 0 : 0;
    params.set("pos", String(offset + rows().indexOf(row)));
    return href.split("?")[0] + "?" + params.toString();
  }

  function openRow(row) {
    var link = row && row.querySelector("a[href*='/items/']");
    if (link) window.location.href = withQueue(link.getAttribute("href"), row);
  }

  function assignToMe(id, then) {
    var body = new FormData();
    body.append("assignee", "me");
    return fetch("/items/" + id + "/assign/", {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRFToken": csrf(), "HX-Request": "true"}
    }).then(function (r) {
      if (!r.ok) {
        toast(r.status === 403 ? "Not part of your role: nothing was changed." : "Could not assign (HTTP " + r.status + ").", "error");
        return;
      }
      var trigger = r.headers.get("HX-Trigger");
      var message = "Assigned to you.";
      try { message = JSON.parse(trigger).toast.message || message; } catch (e) { /* keep the default */ }
      toast(message, /^Assigned/.test(message) ? "success" : "error");
      if (then) then();
    });
  }

  function queueKey(evt) {
    var list = rows();
    var i = currentIndex(list);
    var row = list[i];
    switch (evt.key) {
      case "j": mark(list, Math.min(i + 1, list.length - 1)); return true;
      case "k": mark(list, Math.max(i - 1, 0)); return true;
      case "Enter": case "o": if (!row) return false; openRow(row); return true;
      case "x":
        if (!row) return false;
        var box = row.querySelector("input[type=checkbox][name=item]");
        if (box) { box.checked = !box.checked; }
        return true;
      case "a":
        if (!row) return false;
        assignToMe(currentId, function () { document.body.dispatchEvent(new CustomEvent("queueChanged")); });
        return true;
    }
    return false;
  }

  // Mouse clicks on an item in the queue carry the queue too.
  document.addEventListener("click", function (evt) {
    var link = evt.target.closest && evt.target.closest("table.queue[data-offset] tbody tr[data-item] a[href*='/items/']");
    if (link) link.setAttribute("href", withQueue(link.getAttribute("href"), link.closest("tr")));
  });

  // After htmx redraws the table, the row the person was on is marked again.
  document.body.addEventListener("htmx:afterSettle", function () {
    if (!currentId) return;
    var list = rows();
    var i = currentIndex(list);
    if (i >= 0) mark(list, i);
  });

  // --- the item page ---------------------------------------------------------------------------
  function itemKey(evt) {
    var id = itemId();
    switch (evt.key) {
      case "j": case "k":
        var link = document.querySelector(evt.key === "j" ? "[data-kb=next]" : "[data-kb=prev]");
        if (link) window.location.href = link.getAttribute("href");
        else toast(document.querySelector("[data-testid=queue-nav]") ? "No " + (evt.key === "j" ? "next" : "previous") + " item in this queue." : "Open the item from the queue to walk it with j and k.", "error");
        return true;
      case "a":
        assignToMe(id, function () { if (window.htmx) window.htmx.ajax("GET", "/items/" + id + "/progress/", {target: "#work", swap: "outerHTML"}); });
        return true;
      case "f":
        var field = document.querySelector("section.fix form select, section.fix form input:not([type=hidden]), section.fix form textarea");
        if (field) { field.scrollIntoView({block: "center"}); field.focus(); }
        else toast("Nothing to fix here for your role.", "error");
        return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.altKey || evt.metaKey || typing(evt) || !keys()) return;
    if (evt.key === "Enter" && evt.target.closest && evt.target.closest("a, button")) return; // its own Enter
    var box = document.getElementById("kb-help");
    if (evt.key === "Escape" && box && !box.hidden) { box.hidden = true; return; }
    if (evt.key === "?") { help(); evt.preventDefault(); return; }
    if ((queueTable() ? queueKey(evt) : itemKey(evt))) evt.preventDefault();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", hint);
  else hint();
})();
