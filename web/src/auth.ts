/** The pasted token lives in sessionStorage: it goes with the tab, never to disk beyond the browser session. */
const KEY = 'facet.token';

export const readToken = (): string | null => sessionStorage.getItem(KEY);
export const storeToken = (token: string): void => sessionStorage.setItem(KEY, token.trim());
export const clearToken = (): void => sessionStorage.removeItem(KEY);
