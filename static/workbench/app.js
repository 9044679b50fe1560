// Toasts raised by the server with HX-Trigger: {"toast": {"message": ..., "level": ...}}
document.body.addEventListener("toast", function (evt) {
  var box = document.getElementById("toasts");
  var el = document.createElement("div");
  el.className = "toast " + (evt.detail.level || "success");
  el.textContent = evt.detail.message;  // textContent: server text is never parsed as HTML
  box.appendChild(el);
  setTimeout(function () { el.remove(); }, 5000);
});

// An htmx action the server refuses (403: not this role; 404: not in your entities; 429: too fast)
// says so, instead of leaving the page as if it had worked.
document.body.addEventListener("htmx:responseError", function (evt) {
  var status = evt.detail.xhr.status;
  var words = {
    403: "Not part of your role: nothing was changed.",
    404: "Not found (or not in your entities).",
    429: "Too many requests: wait a moment and try again."
  }[status] || "The server could not do this (HTTP " + status + "). Nothing was changed.";
  document.body.dispatchEvent(new CustomEvent("toast", {detail: {message: words, level: "error"}}));
});

// Behaviour is attached here, never inline (onclick=, hx-on): the Content-Security-Policy runs no inline
// script. Listeners sit on the document, so rows and forms that htmx swaps in later work too.

// <input type="checkbox" data-check-all="input[name=item]">: ticks or clears every box the selector finds.
document.addEventListener("change", function (evt) {
  var all = evt.target.closest("[data-check-all]");
  if (!all) return;
  document.querySelectorAll(all.getAttribute("data-check-all")).forEach(function (box) {
    box.checked = all.checked;
  });
});

// <select data-submit-on-change>: submits its form as soon as the choice changes (htmx takes the submit).
document.addEventListener("change", function (evt) {
  var field = evt.target.closest("[data-submit-on-change]");
  if (field && field.form) field.form.requestSubmit();
});
