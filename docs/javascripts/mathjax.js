// MathJax 3 for pymdownx.arithmatex (generic mode: \( \) and \[ \]) and for the
// notebooks' Markdown cells, which keep their $ $ and $$ $$ delimiters. Code (pre,
// code) is never scanned.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
};

// Material's instant navigation swaps pages without reloading: typeset each new one.
document$.subscribe(() => {
  if (MathJax.startup && MathJax.typesetPromise) {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    MathJax.typesetPromise();
  }
});
