import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadRepliesFile, type PlanRequest, ReplyGenerator } from './reply-generator';
import { SimTokenizer } from './sim-tokenizer';

const tokenizer = new SimTokenizer();

function request(overrides: Partial<PlanRequest> = {}): PlanRequest {
  return {
    promptTokenIds: tokenizer.encodeChat([{ role: 'user', content: 'What is a KV cache?' }]),
    maxTokens: 1000,
    eosTokenId: tokenizer.imEndId,
    ...overrides,
  };
}

describe('ReplyGenerator', () => {
  const sut = new ReplyGenerator(tokenizer, { min: 64, max: 128 });

  it('should give the same synthetic reply when the prompt and seed are the same', () => {
    const a = sut.plan(request({ seed: 7 }));
    const b = sut.plan(request({ seed: 7 }));
    const other = sut.plan(request({ seed: 8 }));

    expect(b).toEqual(a);
    expect(other.text).not.toBe(a.text);
    expect(a.text.startsWith('[simulated]')).toBe(true);
    expect(a.source).toBe('synthetic');
  });

  it('should end with the EOS token and a length between min and max when max_tokens allows it', () => {
    const plan = sut.plan(request());

    expect(plan.finishReason).toBe('stop');
    expect(plan.outputIds.at(-1)).toBe(tokenizer.imEndId);
    expect(plan.outputIds.length - 1).toBeGreaterThanOrEqual(64);
    expect(plan.outputIds.length - 1).toBeLessThanOrEqual(128);
    expect(plan.deltas.join('')).toBe(plan.text);
    expect(tokenizer.encode(plan.text)).toEqual(plan.outputIds.slice(0, -1));
  });

  it('should truncate to max_tokens with finish reason length when the reply is longer', () => {
    const plan = sut.plan(request({ maxTokens: 5 }));

    expect(plan.outputIds).toHaveLength(5);
    expect(plan.finishReason).toBe('length');
    expect(plan.outputIds).not.toContain(tokenizer.imEndId);
  });

  it('should cut the text before the first stop string and report it when the reply contains one', () => {
    const full = sut.plan(request()).text;
    const plan = sut.plan(request({ stop: ['engine'] }));

    expect(full.indexOf('engine')).toBeGreaterThan(0);
    expect(plan.text).toBe(full.slice(0, full.indexOf('engine')));
    expect(plan.finishReason).toBe('stop');
    expect(plan.stopReason).toBe('engine');
    expect(plan.deltas.join('')).toBe(plan.text);
  });

  describe('with a replies file', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'sim-replies-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('should replay the recorded assistant reply when the last user message is in the file', () => {
      const file = join(dir, 'dialogues.jsonl');
      const dialogue = {
        messages: [
          { role: 'user', content: 'Who is the tallest?' },
          { role: 'assistant', content: 'A is the tallest of the three.' },
          { role: 'user', content: 'And now?' },
          { role: 'assistant', content: 'Now E is the tallest.' },
        ],
      };
      writeFileSync(file, `${JSON.stringify(dialogue)}\n\n`);
      const withFile = new ReplyGenerator(tokenizer, { min: 64, max: 128 }, loadRepliesFile(file));

      const hit = withFile.plan(request({ lastUserMessage: '  And   now? ' }));
      const miss = withFile.plan(request({ lastUserMessage: 'Something else' }));
      const afterVolatileContext = withFile.plan(
        request({ lastUserMessage: 'Date: 2026-11-21\n\nAnd now?' }),
      );

      expect(hit).toMatchObject({
        text: 'Now E is the tallest.',
        source: 'replies-file',
        finishReason: 'stop',
      });
      expect(miss.source).toBe('synthetic');
      expect(afterVolatileContext).toMatchObject({ text: 'Now E is the tallest.', source: 'replies-file' });
    });

    it('should name the line when the file holds malformed JSON', () => {
      const file = join(dir, 'broken.jsonl');
      writeFileSync(file, '{"messages":[]}\n{oops\n');

      expect(() => loadRepliesFile(file)).toThrow(/broken\.jsonl:2/);
    });
  });
});
