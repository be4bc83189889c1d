/** The part of dcmjs 0.51 Facet uses (the package ships no types). */
declare module 'dcmjs' {
  export const data: {
    DicomMetaDictionary: {
      dictionary: Record<string, { tag: string; vr: string; vm: string; name: string } | undefined>;
      /** The same entries by keyword. */
      nameMap: Record<string, { tag: string; vr: string; vm: string; name: string } | undefined>;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a naturalized data set holds any attribute
      naturalizeDataset(dict: Record<string, unknown>): Record<string, any>;
    };
    DicomMessage: {
      readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): { meta: Record<string, unknown>; dict: Record<string, unknown> };
    };
  };
  export const log: { setLevel(level: string): void };
}
