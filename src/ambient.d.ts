// The few web-platform globals the core uses. Declared here instead of pulling in
// "DOM" or "node" types, so the core stays portable and a stray Buffer fails to compile.
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
interface Blob {
  readonly size: number;
  slice(start?: number, end?: number): Blob;
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** Both platforms have it; the core uses it only to yield to the event loop. */
declare function setTimeout(callback: () => void, ms?: number): unknown;
/** Cancels a setTimeout (the periodic flusher stops at unmount). */
declare function clearTimeout(handle: unknown): void;
