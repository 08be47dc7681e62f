// The value statement's "Print" button (no inline script: the page works under a strict CSP).
document.querySelectorAll("[data-print]").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
