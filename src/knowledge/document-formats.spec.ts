import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractText, resolveContentType } from './document-formats';
import { DocumentUnreadable, UnsupportedDocumentType } from './knowledge.errors';

const fixture = (name: string): Buffer =>
  readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'knowledge', name));

describe('resolveContentType', () => {
  it('should trust a specific declared type and fall back to the extension for a generic one', () => {
    expect(resolveContentType('a.bin', 'application/pdf')).toBe('application/pdf');
    expect(resolveContentType('notes.md', 'text/markdown; charset=utf-8')).toBe('text/markdown');
    expect(resolveContentType('notes.md', 'text/plain')).toBe('text/markdown');
    expect(resolveContentType('page.HTM', 'application/octet-stream')).toBe('text/html');
    expect(resolveContentType('manual.pdf', undefined)).toBe('application/pdf');
    expect(resolveContentType('x', 'text/x-markdown')).toBe('text/markdown');
  });

  it('should refuse an unknown type, naming the supported ones', () => {
    expect(() => resolveContentType('pixel.png', 'image/png')).toThrow(UnsupportedDocumentType);
    expect(() => resolveContentType('sheet.xlsx', null)).toThrow(
      /text\/markdown, text\/plain, text\/html, application\/pdf/,
    );
  });
});

describe('extractText', () => {
  it('should convert HTML to Markdown with its headings and without scripts or styles', async () => {
    const sut = await extractText(fixture('lanterns.html'), 'text/html', 'lanterns.html');
    expect(sut.format).toBe('markdown');
    expect(sut.text).toMatch(/^# Beacon Lantern/m);
    expect(sut.text).toMatch(/^## Battery/m);
    expect(sut.text).not.toMatch(/tracking|color: red/);
  });

  it('should read a PDF page by page, each page a section', async () => {
    const sut = await extractText(fixture('guide.pdf'), 'application/pdf', 'guide.pdf');
    expect(sut.sections?.map((s) => s.headingPath)).toEqual([['Page 1'], ['Page 2']]);
    const [one, two] = sut.sections!;
    expect(sut.text.slice(one.start, one.end)).toContain('Glacier Lantern runs for 40 hours');
    expect(sut.text.slice(two.start, two.end)).toContain('away from open flames');
  });

  it('should fail a broken PDF, invalid UTF-8 and a document without text with a reason', async () => {
    await expect(extractText(fixture('broken.pdf'), 'application/pdf', 'broken.pdf')).rejects.toThrow(
      new DocumentUnreadable('broken.pdf is not a readable PDF: Invalid PDF structure.'),
    );
    await expect(extractText(Buffer.from([0xff, 0xfe, 0x00, 0xd8]), 'text/plain', 'bin.txt')).rejects.toThrow(
      /not valid UTF-8/,
    );
    await expect(extractText(Buffer.from(' \n\t\n'), 'text/markdown', 'blank.md')).rejects.toThrow(/no text/);
  });

  it('should normalise line ends and keep Markdown as it is', async () => {
    const sut = await extractText(Buffer.from('# T\r\n\r\nBody\r\n'), 'text/markdown', 't.md');
    expect(sut).toEqual({ text: '# T\n\nBody\n', format: 'markdown' });
  });
});
