// Animates the admin's character preview: asks for the next frame once the last one is in.
(() => {
  const img = document.getElementById("avatar-preview");
  if (!img) return;
  const base = img.dataset.src;
  const started = performance.now();
  img.addEventListener("load", () => {
    const t = Math.round(performance.now() - started);
    setTimeout(() => { img.src = `${base}?t=${t}`; }, 60);
  });
})();
