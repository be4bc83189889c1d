/** The transfer syntaxes Facet reads; pixel data is always kept exactly as it arrived. */
export interface TransferSyntax {
  uid: string;
  name: string;
  littleEndian: boolean;
  explicitVr: boolean;
  /** Pixel data in fragments (compressed); decoded only at inference time. */
  encapsulated: boolean;
  /** The data set after the File Meta is deflated (RFC 1951, PS3.5 A.5); inside it is Explicit VR Little Endian. */
  deflated?: boolean;
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
export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';

export const TRANSFER_SYNTAXES: ReadonlyMap<string, TransferSyntax> = new Map(
  [
    native(IMPLICIT_VR_LITTLE_ENDIAN, 'Implicit VR Little Endian', true, false),
    native(EXPLICIT_VR_LITTLE_ENDIAN, 'Explicit VR Little Endian', true, true),
    native(EXPLICIT_VR_BIG_ENDIAN, 'Explicit VR Big Endian (retired)', false, true),
    { ...native(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, 'Deflated Explicit VR Little Endian', true, true), deflated: true },
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

/**
 * The transfer syntax an object is stored in: the one it arrived in, except that a deflated data set is stored
 * inflated (Explicit VR Little Endian, the encoding inside the deflate stream), so every stored object can be read
 * without inflating a stream first and its pixel data stays byte for byte what arrived.
 */
export function storageSyntax(ts: TransferSyntax): TransferSyntax {
  return ts.deflated ? (TRANSFER_SYNTAXES.get(EXPLICIT_VR_LITTLE_ENDIAN) as TransferSyntax) : ts;
}
