import type { ContextConfig } from '../config/context.config';
import { PromptAssembler } from './prompt-assembler';
import type { HistoryMessage, PromptSpec } from './prompt.types';

const config = (overrides: Partial<ContextConfig> = {}): ContextConfig =>
  ({ PROMPT_LAYOUT: 'stable', PROMPT_DATE_IN_TAIL: true, ...overrides }) as ContextConfig;

const spec = (
  history: HistoryMessage[],
  userMessage: string,
  extra: Partial<PromptSpec> = {},
): PromptSpec => ({
  stablePrefix: 'You are kvchat.\n\nRole: general assistant.',
  templateVersion: 'global@1+assistant@1',
  history,
  userMessage,
  ...extra,
});

describe('PromptAssembler', () => {
  it('should keep the system message byte-identical across turns, days and users in the stable layout', () => {
    const sut = new PromptAssembler(config());
    const turn1 = sut.build(spec([], 'Hi'), { now: new Date('2026-01-01T08:00:00Z'), userName: 'Ann' });
    const turn2 = sut.build(
      spec(
        [
          { role: 'user', content: turn1.userContent, sequence: 1 },
          { role: 'assistant', content: 'Hello!', sequence: 2 },
        ],
        'And tomorrow?',
      ),
      { now: new Date('2026-01-02T23:59:59Z'), userName: 'Bob' },
    );

    expect(turn2.messages[0]).toEqual(turn1.messages[0]);
    expect(Buffer.from(turn2.messages[0].content).equals(Buffer.from(turn1.messages[0].content))).toBe(true);
    expect(turn2.messages[0].content).not.toMatch(/2026|Ann|Bob/);
  });

  it("should start turn 2's prompt with turn 1's prompt when the user message is replayed as sent", () => {
    const sut = new PromptAssembler(config());
    const turn1 = sut.build(
      spec([], 'What is a KV cache?', { volatileContext: 'Passage: KV caches hold keys.' }),
      {
        now: new Date('2026-03-04T10:00:00Z'),
      },
    );
    const turn2 = sut.build(
      spec(
        [
          { role: 'user', content: turn1.userContent, sequence: 1 },
          { role: 'assistant', content: 'It stores attention keys and values.', sequence: 2 },
        ],
        'Why reuse it?',
      ),
      { now: new Date('2026-03-04T10:05:00Z') },
    );

    expect(turn2.messages.slice(0, turn1.messages.length)).toEqual(turn1.messages);
    expect(turn1.userContent).toBe(
      'Date: 2026-03-04\n\nPassage: KV caches hold keys.\n\nWhat is a KV cache?',
    );
  });

  it('should put the rolling summary right after the stable prefix', () => {
    const sut = new PromptAssembler(config());
    const built = sut.build(
      spec([{ role: 'user', content: 'later', sequence: 9 }], 'now', { summary: 'They met.' }),
    );

    expect(built.messages.map((m) => m.role)).toEqual(['system', 'system', 'user', 'user']);
    expect(built.messages[1].content).toBe('Summary of the earlier conversation:\nThey met.');
  });

  it('should put the clock and the user name first in the naive layout, so the prefix changes every turn', () => {
    const sut = new PromptAssembler(config({ PROMPT_LAYOUT: 'naive' }));
    const a = sut.build(spec([], 'Hi'), { now: new Date('2026-01-01T08:00:00Z'), userName: 'Ann' });
    const b = sut.build(spec([], 'Hi'), { now: new Date('2026-01-01T08:00:01Z'), userName: 'Ann' });

    expect(a.messages[0].content.startsWith('Current date and time: 2026-01-01T08:00:00.000Z.')).toBe(true);
    expect(a.messages[0].content).toContain("The user's name is Ann.");
    expect(a.messages[0].content).not.toBe(b.messages[0].content);
    expect(a.userContent).toBe('Hi');
  });

  it('should leave the date out of the tail when PROMPT_DATE_IN_TAIL is off', () => {
    const sut = new PromptAssembler(config({ PROMPT_DATE_IN_TAIL: false }));

    expect(sut.build(spec([], 'Hi')).userContent).toBe('Hi');
  });
});
