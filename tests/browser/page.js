// The tests drive tests/browser/page.html through `window.webslm` (the
// package's module, a promise so that a failed import reaches the test as an
// error) and write what they did with `window.show`, for the screenshot. A
// file of its own, not inline, so that the page also runs under a strict
// Content-Security-Policy (tests/browser/csp.test.mjs).
window.webslm = import('/pkg/index.js');
window.show = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};
