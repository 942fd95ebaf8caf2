// Loaded before the app's module: if the module itself cannot load or throws while
// loading, the window shows why instead of staying blank.
window.addEventListener("error", function (event) {
  if (document.getElementById("view")) return;
  var box = document.getElementById("startup-error") || document.createElement("pre");
  box.id = "startup-error";
  box.className = "error";
  box.textContent = (box.textContent ? box.textContent + "\n" : "Berth Desktop could not start its window:\n") +
    event.message + " (" + event.filename + ":" + event.lineno + ")";
  document.body.appendChild(box);
});
window.addEventListener("unhandledrejection", function (event) {
  if (document.getElementById("view")) return;
  var box = document.getElementById("startup-error") || document.createElement("pre");
  box.id = "startup-error";
  box.className = "error";
  box.textContent = "Berth Desktop could not start its window:\n" + String(event.reason);
  document.body.appendChild(box);
});
