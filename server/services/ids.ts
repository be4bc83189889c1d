const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Row ids are uuids; PostgreSQL answers any other text compared with one with an error, not with "no row". */
export const isUuid = (value: string): boolean => UUID.test(value);
