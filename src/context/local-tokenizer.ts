import { cl100k } from '../common/cl100k';

/**
 * The local fallback tokenizer: cl100k_base BPE (tiktoken, ranks bundled, nothing downloaded), linear
 * in the input (see `cl100k` for how pathological runs are bounded). Counts are exact for engines that
 * use cl100k (the simulator does) and an estimate, usually within ~10%, for other models; the engine's
 * `/tokenize` is preferred when it exists.
 */
export class LocalTokenizer {
  /** Token ids of plain text (special-token strings are encoded as ordinary text). Blocks for its whole run. */
  encode(text: string): number[] {
    return Array.from(cl100k.encode(text));
  }

  /** Builds and warms the shared encoder (once per process; ~0.2-0.5 s): call at boot, before serving. */
  warm(): void {
    cl100k.warm();
  }

  /** As `encode`, yielding to the event loop every few ms of work (for request paths). */
  encodeAsync(text: string): Promise<Uint32Array> {
    return cl100k.encodeAsync(text);
  }
}
