import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeStablePrefix, loadPromptTemplate, PromptTemplateError } from './prompt-template';

/**
 * The text of every template version that has shipped. A template's text is part of the engine's
 * cached prefix of every conversation: changing it without a new version would silently invalidate
 * that prefix and make two different prompts share one recorded `templateVersion`.
 */
const SHIPPED: Record<string, string> = {
  'global@1': 'cc25ddff95a4',
  'assistant@1': '3732c61ccaf0',
  'summarizer@1': '5750283342a4',
};

describe('prompt templates', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'kvchat-templates-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, body: string): string => {
    const path = join(dir, `${name}-${createHash('sha1').update(body).digest('hex').slice(0, 8)}.md`);
    writeFileSync(path, body);
    return path;
  };

  it('should read the name, version and trimmed text from the front matter', () => {
    const sut = loadPromptTemplate(write('global', '---\nname: global\nversion: 3\n---\n\nBe helpful.\n\n'));

    expect(sut).toMatchObject({ name: 'global', version: '3', text: 'Be helpful.' });
  });

  it('should compose the same bytes and version every time, and a new version only when the text is a new file', () => {
    const v1 = loadPromptTemplate(write('tone', '---\nname: tone\nversion: 1\n---\nBe brief.'));
    const agent = loadPromptTemplate(write('agent', '---\nname: agent\nversion: 1\n---\nAnswer questions.'));
    const v2 = loadPromptTemplate(write('tone', '---\nname: tone\nversion: 2\n---\nBe brief and kind.'));

    const first = composeStablePrefix([v1, agent]);
    const again = composeStablePrefix([loadPromptTemplate(v1.path), loadPromptTemplate(agent.path)]);
    const bumped = composeStablePrefix([v2, agent]);

    expect(Buffer.from(again.text).equals(Buffer.from(first.text))).toBe(true);
    expect(first).toEqual({ text: 'Be brief.\n\nAnswer questions.', templateVersion: 'tone@1+agent@1' });
    expect(bumped.templateVersion).toBe('tone@2+agent@1');
    expect(bumped.text).not.toBe(first.text);
  });

  it('should refuse a template without a version', () => {
    expect(() => loadPromptTemplate(write('bad', '---\nname: bad\n---\ntext'))).toThrow(PromptTemplateError);
    expect(() => loadPromptTemplate(write('bad2', 'no front matter'))).toThrow(/front matter/);
  });

  it.each([
    ['global', join(__dirname, '..', 'agents', 'templates', 'global.md')],
    ['assistant', join(__dirname, '..', 'agents', 'templates', 'assistant.md')],
    ['summarizer', join(__dirname, '..', 'agents', 'templates', 'summarizer.md')],
  ])(
    'should ship the %s template text recorded for its version (bump the version when the text changes)',
    (_, path) => {
      const template = loadPromptTemplate(path);
      const key = `${template.name}@${template.version}`;

      expect({ key, hash: template.hash }).toEqual({
        key,
        hash: SHIPPED[key] ?? 'a new version: record its hash in SHIPPED',
      });
    },
  );
});
