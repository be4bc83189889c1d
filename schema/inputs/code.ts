/** Codes and pseudonyms are short, stable identifiers users type: letters, digits, dash and underscore. */
export const CODE = /^[A-Za-z0-9_-]+$/;
