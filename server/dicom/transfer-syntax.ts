/** The transfer syntaxes Facet stores; pixel data is always kept exactly as it arrived. */
export interface TransferSyntax {
  uid: string;
  name: string;
  littleEndian: boolean;
  explicitVr: boolean;
  /** Pixel data in fragments (compressed); decoded only at inference time. */
  encapsulated: boolean;
}

const native = (uid: string, name: string, littleEndian: boolean, explicitVr: boolean): TransferSyntax => ({
  uid,
  name,
  littleEndian,
  explicitVr,
  encapsulated: false,
});
const compressed = (uid: string, name: string): TransferSyntax => ({ uid, name, littleEndian: true, explicitVr: true, encapsulated: true });

export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const EXPLICIT_VR_BIG_ENDIAN = '1.2.840.10008.1.2.2';

export const TRANSFER_SYNTAXES: ReadonlyMap<string, TransferSyntax> = new Map(
  [
    native(IMPLICIT_VR_LITTLE_ENDIAN, 'Implicit VR Little Endian', true, false),
    native(EXPLICIT_VR_LITTLE_ENDIAN, 'Explicit VR Little Endian', true, true),
    native(EXPLICIT_VR_BIG_ENDIAN, 'Explicit VR Big Endian (retired)', false, true),
    compressed('1.2.840.10008.1.2.5', 'RLE Lossless'),
    compressed('1.2.840.10008.1.2.4.50', 'JPEG Baseline (Process 1)'),
    compressed('1.2.840.10008.1.2.4.51', 'JPEG Extended (Process 2 & 4)'),
    compressed('1.2.840.10008.1.2.4.57', 'JPEG Lossless, Non-Hierarchical (Process 14)'),
    compressed('1.2.840.10008.1.2.4.70', 'JPEG Lossless, First-Order Prediction'),
    compressed('1.2.840.10008.1.2.4.80', 'JPEG-LS Lossless'),
    compressed('1.2.840.10008.1.2.4.81', 'JPEG-LS Near-Lossless'),
    compressed('1.2.840.10008.1.2.4.90', 'JPEG 2000 Lossless'),
    compressed('1.2.840.10008.1.2.4.91', 'JPEG 2000'),
    compressed('1.2.840.10008.1.2.4.201', 'HTJ2K Lossless'),
    compressed('1.2.840.10008.1.2.4.203', 'HTJ2K'),
  ].map((ts) => [ts.uid, ts]),
);
