// jpeg-js ships types only for its index, which also pulls in the encoder and Node's Buffer.
declare module 'jpeg-js/lib/decoder.js' {
  export default function decode(
    jpegData: Uint8Array | ArrayBuffer,
    opts: {
      useTArray: true;
      formatAsRGBA: false;
      colorTransform?: boolean;
      tolerantDecoding?: boolean;
      maxResolutionInMP?: number;
      maxMemoryUsageInMB?: number;
    },
  ): { width: number; height: number; data: Uint8Array };
}

declare module 'jpeg-js/lib/encoder.js' {
  export default function encode(
    image: { width: number; height: number; data: Uint8Array; exifBuffer?: Uint8Array; comments?: string[] },
    quality?: number,
  ): { data: Uint8Array; width: number; height: number };
}
