// MathJax 3 for pymdownx.arithmatex's generic output (\( \) inline, \[ \] display); the library is served by the
// site itself (assets/mathjax/), so no request leaves it.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
  svg: { fontCache: "global" },
};
// MathJax typesets each page once it has loaded. (With the theme's navigation.instant, which this site does not
// use, pages change without loading and would need MathJax.typesetPromise() on every document$ event.)
