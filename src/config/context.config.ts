import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsNumber, Max, Min } from 'class-validator';
import { toBoolean } from './config.loader';

/** Context-window policies, prompt layout and token counting (src/context). */
export class ContextConfig {
  /**
   * How a conversation is kept inside the context window:
   * `compact` drops whole old turns down to CONTEXT_LOW_WATER when the prompt would exceed the
   * budget (the prefix changes only then); `summary` folds old turns into a rolling summary made by a
   * queued job; `sliding` drops the oldest messages every turn once full (the common behaviour,
   * kept as a baseline: it changes the prefix on every turn).
   */
  @IsIn(['sliding', 'compact', 'summary'])
  CONTEXT_POLICY: 'sliding' | 'compact' | 'summary' = 'compact';
  /** After a compaction the prompt is at most this fraction of the budget (0..1). */
  @IsNumber() @Min(0.1) @Max(0.95) CONTEXT_LOW_WATER = 0.6;
  /** `summary`: a summary job is queued once the prompt passes this fraction of the budget (0..1). */
  @IsNumber() @Min(0.1) @Max(1) CONTEXT_SUMMARY_TRIGGER = 0.8;
  /** `summary`: completion budget of the summarizer, tokens. */
  @IsInt() @Min(16) CONTEXT_SUMMARY_MAX_TOKENS = 512;
  /**
   * `summary`: how long a turn that needs a compaction waits for a queued summary before it falls back
   * to dropping turns (the summary then arrives at the next compaction), ms.
   */
  @IsInt() @Min(0) CONTEXT_SUMMARY_WAIT_MS = 10_000;
  /**
   * Prompt layout. `stable` (default): byte-identical prefix, the date in the volatile tail.
   * `naive`: the clock and the user name at the top of the system prompt, as a typical chat backend
   * does; it defeats the engine's prefix cache and exists only as the benchmark baseline.
   */
  @IsIn(['stable', 'naive']) PROMPT_LAYOUT: 'stable' | 'naive' = 'stable';
  /** Put the current date (UTC day) in the volatile tail of each user message. */
  @Transform(toBoolean) @IsBoolean() PROMPT_DATE_IN_TAIL = true;
  /**
   * Token counting: `engine` = the engine's `/tokenize` (vLLM, the simulator), `local` = cl100k_base
   * (tiktoken), `auto` = the engine when it answers `/tokenize`, else local.
   */
  @IsIn(['auto', 'engine', 'local']) TOKENIZER: 'auto' | 'engine' | 'local' = 'auto';
  /**
   * Tokens of conversations' last prompts kept per api process (fingerprint, block hashes, message text
   * and digests: 12-18 bytes of heap per token, measured), so a turn tokenizes and hashes only what is new
   * since its conversation's previous turn. A conversation not held (evicted, or its last turn served by
   * another process) is built from scratch. The default (3-5 MB) holds ~15 conversations at 16k tokens or
   * ~250 at 1k; raise it where long conversations return to the same process. 0 = keep none.
   */
  @IsInt() @Min(0) CONTEXT_PROMPT_CHAIN_TOKENS = 250_000;
}
