/** The decoder side of the @cornerstonejs WASM codecs (the packages ship no types for these entry points). */
interface CornerstoneDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  getDecodedBuffer(): Uint8Array;
  delete?(): void;
}
interface CornerstoneCodecModule {
  JpegLSDecoder: new () => CornerstoneDecoder;
  J2KDecoder: new () => CornerstoneDecoder;
  JPEGDecoder: new () => CornerstoneDecoder;
}
declare module '@cornerstonejs/codec-charls/decodewasmjs' {
  const factory: () => Promise<CornerstoneCodecModule>;
  export default factory;
}
declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: () => Promise<CornerstoneCodecModule>;
  export default factory;
}
declare module '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs' {
  const factory: () => Promise<CornerstoneCodecModule>;
  export default factory;
}
declare module 'jpeg-lossless-decoder-js' {
  /** JPEG lossless (ITU T.81 process 14) decoder: the samples of one frame. */
  export class Decoder {
    decode(buffer: ArrayBuffer, offset?: number, length?: number, numBytes?: number): Uint8Array | Uint16Array;
  }
}
