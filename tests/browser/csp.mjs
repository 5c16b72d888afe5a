// Content-Security-Policy violations, as chromium reports them on a page's console ("Refused
// to load the script ... because it violates the following Content Security Policy directive").
// `watchViolations(browser)` listens on every page of every context the browser opens from
// then on, so a test file's own flows prove that its pages break no policy.

/** Whether a console message reports a CSP violation. */
export const isViolation = (message) => /Content Security Policy/i.test(message.text());

/** Collects the CSP violations of every page of `context` into `into`; returns `into`. */
export function watchContext(context, into = []) {
  context.on("console", (message) => isViolation(message) && into.push(`${message.page()?.url()}: ${message.text()}`));
  return into;
}

/** Watches every context `browser.newContext` makes from now on; returns the shared list. */
export function watchViolations(browser) {
  const seen = [];
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const context = await newContext(...args);
    watchContext(context, seen);
    return context;
  };
  return seen;
}
