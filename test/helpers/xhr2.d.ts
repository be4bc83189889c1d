/** xhr2 ships no types: XMLHttpRequest over Node's http module, for browser clients run in tests. */
declare module 'xhr2' {
  const XMLHttpRequest: typeof globalThis.XMLHttpRequest;
  export default XMLHttpRequest;
}
