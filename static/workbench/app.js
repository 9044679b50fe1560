// Toasts raised by the server with HX-Trigger: {"toast": {"message": ..., "level": ...}}
document.body.addEventListener("toast", function (evt) {
  var box = document.getElementById("toasts");
  var el = document.createElement("div");
  el.className = "toast " + (evt.detail.level || "success");
  el.textContent = evt.detail.message;  // textContent: server text is never parsed as HTML
  box.appendChild(el);
  setTimeout(function () { el.remove(); }, 5000);
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
