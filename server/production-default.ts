/**
 * Imported first by the entry point: unless the environment says otherwise, a Facet process runs as production.
 * graphql-js reads NODE_ENV once, as it loads, and outside production checks every value's class across realms
 * on each field it resolves (about a tenth of a busy server's time); nothing else in Facet depends on it.
 */
process.env.NODE_ENV ??= 'production';
