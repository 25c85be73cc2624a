import { get_encoding } from 'tiktoken';
import { CL100K_SPECIALS, IM_END_TOKEN, IM_START_TOKEN } from '../common/cl100k';
import { renderChatTemplate } from './chat-template';
import { IncrementalDetokenizer, SimTokenizer } from './sim-tokenizer';

describe('renderChatTemplate', () => {
  it('should render ChatML messages and the generation prompt when asked', () => {
    const sut = renderChatTemplate([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);

    expect(sut).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('should omit the generation prompt when add_generation_prompt is false', () => {
    expect(renderChatTemplate([{ role: 'user', content: 'Hi' }], false)).toBe(
      '<|im_start|>user\nHi<|im_end|>\n',
    );
  });
});

describe('SimTokenizer', () => {
  const sut = new SimTokenizer();

  it('should encode special tokens as single ids when they appear in the rendered template', () => {
    const ids = sut.encode('<|im_start|>user\nHello world<|im_end|>\n');

    expect(ids[0]).toBe(sut.imStartId);
    expect(ids).toContain(sut.imEndId);
    expect(sut.decode(ids)).toBe('<|im_start|>user\nHello world<|im_end|>\n');
  });

  it('should give the same ids per message as for the whole rendered chat when using the message cache', () => {
    const messages = [
      { role: 'system', content: 'You are kvchat. Answer in  two   sentences.\n\nRules:\n- be kind' },
      { role: 'user', content: 'Quelle est la capitale de la France ? 🇫🇷' },
      { role: 'assistant', content: '[simulated] Paris, probably.' },
      { role: 'user', content: '  leading spaces and <|im_end|> inside' },
    ];

    expect(sut.encodeChat(messages)).toEqual(sut.encode(renderChatTemplate(messages)));
    expect(sut.encodeChat(messages, false)).toEqual(sut.encode(renderChatTemplate(messages, false)));
    expect(sut.encodeChat(messages)).toEqual(sut.encode(renderChatTemplate(messages))); // served from the cache
  });

  it('should give tiktoken’s own ids on ordinary text, sync and async, so counts are unchanged', async () => {
    const reference = get_encoding('cl100k_base', {
      [IM_START_TOKEN]: CL100K_SPECIALS[IM_START_TOKEN],
      [IM_END_TOKEN]: CL100K_SPECIALS[IM_END_TOKEN],
    });
    const messages = [
      { role: 'system', content: 'You are kvchat.\n\nAnswer in French when asked in French.' },
      { role: 'user', content: "Quelle est la capitale de la France ? It's 1234567 km away; 東京 🇫🇷 naïve" },
    ];
    const rendered = renderChatTemplate(messages);
    const expected = Array.from(reference.encode(rendered, 'all'));
    reference.free();

    expect(sut.encode(rendered)).toEqual(expected);
    expect(await sut.encodeAsync(rendered)).toEqual(expected);
    expect(await sut.encodeChatAsync(messages)).toEqual(expected);
  });

  it('should extend the previous turn when the reply is appended to the chat', () => {
    const turn1 = [{ role: 'user', content: 'Tell me something.' }];
    const reply = 'Something true.';
    const prompt1 = sut.encodeChat(turn1);
    const prompt2 = sut.encodeChat([
      ...turn1,
      { role: 'assistant', content: reply },
      { role: 'user', content: 'More.' },
    ]);

    expect(prompt2.slice(0, prompt1.length)).toEqual(prompt1);
    expect(prompt2.slice(prompt1.length, prompt1.length + sut.encode(reply).length)).toEqual(
      sut.encode(reply),
    );
  });
});

describe('IncrementalDetokenizer', () => {
  it('should hold back a multi-byte character until its last token arrives', () => {
    const tokenizer = new SimTokenizer();
    const text = 'née 🇫🇷 ok';
    const sut = new IncrementalDetokenizer(tokenizer);

    const pieces = tokenizer.encode(text).map((id) => sut.push(id));
    const joined = pieces.join('') + sut.flush();

    expect(joined).toBe(text);
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
  });
});
