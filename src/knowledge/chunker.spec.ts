import { Chunker, countTokens, documentLead, markdownSections } from './chunker';

const manual = [
  '# Alpine Ridge Tent',
  '',
  'A two-person backpacking tent.',
  '',
  '## Setup',
  '',
  'Unroll the body.',
  '',
  '### Rainfly',
  '',
  'Drape the rainfly.',
  '',
  '```',
  '# not a heading: inside a code block',
  '```',
  '',
  'Warranty',
  '--------',
  '',
  'Five years.',
  '',
].join('\n');

describe('markdownSections', () => {
  it('should cut at ATX and setext headings, not at a # inside a code block, with each heading path', () => {
    const sut = markdownSections(manual);
    expect(sut.map((s) => s.headingPath)).toEqual([
      ['Alpine Ridge Tent'],
      ['Alpine Ridge Tent', 'Setup'],
      ['Alpine Ridge Tent', 'Setup', 'Rainfly'],
      ['Alpine Ridge Tent', 'Warranty'],
    ]);
    expect(manual.slice(sut[2].start, sut[2].end)).toContain('# not a heading');
    expect(manual.slice(sut[3].start, sut[3].end).trim()).toBe('Five years.');
  });

  it('should keep text before the first heading as a section without a path', () => {
    const sut = markdownSections('Preface line.\n\n# Title\n\nBody.\n');
    expect(sut[0]).toEqual({ headingPath: [], start: 0, end: 15 });
    expect(sut[1].headingPath).toEqual(['Title']);
  });
});

describe('Chunker', () => {
  it('should give every chunk its heading path and offsets that slice the source exactly', async () => {
    const sut = new Chunker({ chunkTokens: 64, overlapTokens: 8 });
    const chunks = await sut.split({ text: manual, format: 'markdown' });
    expect(chunks.map((c) => c.heading)).toEqual([
      'Alpine Ridge Tent',
      'Alpine Ridge Tent > Setup',
      'Alpine Ridge Tent > Setup > Rainfly',
      'Alpine Ridge Tent > Warranty',
    ]);
    for (const c of chunks) expect(manual.slice(c.start, c.end)).toBe(c.text);
    expect(chunks.map((c) => c.ordinal)).toEqual([0, 1, 2, 3]);
    expect(chunks[3].embeddingText).toBe('Alpine Ridge Tent > Warranty\n\nFive years.');
  });

  it('should bound long sections by tokens, with overlap between consecutive chunks', async () => {
    const sentences = Array.from(
      { length: 60 },
      (_, i) => `Sentence number ${i} explains one more detail of the stove.`,
    );
    const text = `# Stove\n\n${sentences.join(' ')}\n`;
    // A sentence is about 12 tokens: 25 tokens of overlap carry one or two sentences over.
    const sut = new Chunker({ chunkTokens: 60, overlapTokens: 25 });
    const chunks = await sut.split({ text, format: 'markdown' });
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) {
      expect(c.tokenCount).toBeLessThanOrEqual(60);
      expect(c.tokenCount).toBe(countTokens(c.text));
      expect(text.slice(c.start, c.end)).toBe(c.text);
    }
    // Overlap: each chunk starts before the previous one ends.
    for (let i = 1; i < chunks.length; i++) expect(chunks[i].start).toBeLessThan(chunks[i - 1].end);
  });

  it('should split plain text by paragraphs and use the format’s own sections (PDF pages)', async () => {
    // Each paragraph is 4-5 tokens: a 6-token bound keeps them apart.
    const sut = new Chunker({ chunkTokens: 6, overlapTokens: 0 });
    const plain = await sut.split({
      text: 'First paragraph here.\n\nSecond paragraph there.',
      format: 'plain',
    });
    expect(plain.map((c) => [c.text, c.headingPath])).toEqual([
      ['First paragraph here.', []],
      ['Second paragraph there.', []],
    ]);
    const text = 'Page one text.\n\nPage two text.';
    const pages = await sut.split({
      text,
      format: 'plain',
      sections: [
        { headingPath: ['Page 1'], start: 0, end: 14 },
        { headingPath: ['Page 2'], start: 16, end: 30 },
      ],
    });
    expect(pages.map((c) => [c.headingPath[0], c.start, c.end])).toEqual([
      ['Page 1', 0, 14],
      ['Page 2', 16, 30],
    ]);
  });

  it('should hash what is embedded, so the same text under another heading is another chunk', async () => {
    const sut = new Chunker({ chunkTokens: 64, overlapTokens: 0 });
    const [a] = await sut.split({ text: '# A\n\nSame words.', format: 'markdown' });
    const [b] = await sut.split({ text: '# B\n\nSame words.', format: 'markdown' });
    const [c] = await sut.split({ text: '# A\n\nSame words.\n', format: 'markdown' });
    expect(a.contentHash).not.toBe(b.contentHash);
    expect(a.contentHash).toBe(c.contentHash);
  });

  it('should embed the document’s lead with every chunk, cut to its token bound, and index only the chunk', async () => {
    const text = [
      '# Information about product item_number: 9',
      'SummitClimber Backpack, price $120,',
      '',
      '## Straps',
      '',
      'Adjust the shoulder straps evenly on both sides.',
      '',
      '## Care',
      '',
      'Wipe it with a damp cloth.',
    ].join('\n');
    const sut = new Chunker({ chunkTokens: 64, overlapTokens: 0, leadTokens: 32 });
    const chunks = await sut.split({ text, format: 'markdown' });
    expect(chunks.map((c) => c.embeddingText)).toEqual([
      'SummitClimber Backpack, price $120,\nInformation about product item_number: 9\n\nSummitClimber Backpack, price $120,',
      'SummitClimber Backpack, price $120,\nInformation about product item_number: 9 > Straps\n\nAdjust the shoulder straps evenly on both sides.',
      'SummitClimber Backpack, price $120,\nInformation about product item_number: 9 > Care\n\nWipe it with a damp cloth.',
    ]);
    for (const c of chunks) expect(text.slice(c.start, c.end)).toBe(c.text);
    // Without a lead, what is embedded (and so its hash) is as before.
    const plain = await new Chunker({ chunkTokens: 64, overlapTokens: 0 }).split({
      text,
      format: 'markdown',
    });
    expect(plain[1].embeddingText).toBe(
      'Information about product item_number: 9 > Straps\n\nAdjust the shoulder straps evenly on both sides.',
    );
    expect(plain[1].contentHash).not.toBe(chunks[1].contentHash);
  });

  it('should take the lead from the first paragraph, in whole words within the token bound', () => {
    const long = 'The Glacier Lantern is a rechargeable camping lantern that runs for many hours.';
    const text = `\n\n${long}\nIt folds flat.\n\nSecond paragraph.`;
    const sections = [{ headingPath: [], start: 0, end: text.length }];
    expect(documentLead(text, sections, 64)).toBe(`${long} It folds flat.`);
    const cut = documentLead(text, sections, 6);
    expect(countTokens(cut)).toBeLessThanOrEqual(6);
    expect(long.startsWith(cut)).toBe(true);
    expect(long[cut.length]).toBe(' ');
    expect(documentLead(text, sections, 0)).toBe('');
    // A document that opens with a subsection has no lead: that section's text is not the document's.
    const manualText = '# Beacon\n\n## Battery\n\nThe battery lasts 60 hours.\n';
    expect(documentLead(manualText, markdownSections(manualText), 32)).toBe('');
  });

  it('should refuse an overlap as large as the chunk', () => {
    expect(() => new Chunker({ chunkTokens: 10, overlapTokens: 10 })).toThrow(RangeError);
  });
});
