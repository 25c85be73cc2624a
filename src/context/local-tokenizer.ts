import { Tiktoken } from 'js-tiktoken/lite';
import cl100kBase from 'js-tiktoken/ranks/cl100k_base';

/**
 * The local fallback tokenizer: BPE with the cl100k_base ranks bundled in js-tiktoken (nothing is
 * downloaded). Counts are exact for engines that use cl100k (the simulator does) and an estimate,
 * usually within ~10%, for other models; the engine's `/tokenize` is preferred when it exists.
 */
export class LocalTokenizer {
  private static bpe?: Tiktoken;

  /** Token ids of plain text (special-token strings are encoded as ordinary text). */
  encode(text: string): number[] {
    LocalTokenizer.bpe ??= new Tiktoken(cl100kBase);
    return LocalTokenizer.bpe.encode(text, [], []);
  }
}
