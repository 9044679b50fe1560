// Toasts raised by the server with HX-Trigger: {"toast": {"message": ..., "level": ...}}
document.body.addEventListener("toast", function (evt) {
  var box = document.getElementById("toasts");
  var el = document.createElement("div");
  el.className = "toast " + (evt.detail.level || "success");
  el.textContent = evt.detail.message;  // textContent: server text is never parsed as HTML
  box.appendChild(el);
  setTimeout(function () { el.remove(); }, 5000);
});
