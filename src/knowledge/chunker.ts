import { createHash } from 'node:crypto';
import type { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import MarkdownIt from 'markdown-it';
import { cl100k } from '../common/cl100k';
import type { ExtractedDocument, ExtractedSection } from './document-formats';

/** Chunk bounds, in tokens (cl100k_base). */
export interface ChunkerOptions {
  /** Largest chunk (KNOWLEDGE_CHUNK_TOKENS). */
  chunkTokens: number;
  /** Tokens repeated from the previous chunk of the same section (KNOWLEDGE_CHUNK_OVERLAP_TOKENS). */
  overlapTokens: number;
  /**
   * Tokens of the document's lead (its first paragraph) embedded with every chunk
   * (KNOWLEDGE_LEAD_TOKENS); 0 or absent: none.
   */
  leadTokens?: number;
}

/** A chunk before it is stored. */
export interface DraftChunk {
  /** Position in the document, 0-based. */
  ordinal: number;
  /** Headings above the chunk, outermost first. */
  headingPath: string[];
  /** `headingPath` joined with " > ". */
  heading: string;
  /** Offsets in the extracted text, characters; `end` exclusive; `text === source.slice(start, end)`. */
  start: number;
  end: number;
  text: string;
  /** Tokens of `text`. */
  tokenCount: number;
  /**
   * What is embedded: the document's lead (when `leadTokens` > 0), the heading path, a blank line,
   * the text. (Full-text search indexes the heading path and the text.)
   */
  embeddingText: string;
  /** SHA-256 (hex) of `embeddingText`: identical chunks share it, and so their embedding. */
  contentHash: string;
}

/**
 * Tokens of `text` with cl100k_base (the project's bounded tokenizer: linear even on a hostile
 * upload, where plain BPE is quadratic in a run's length).
 */
export function countTokens(text: string): number {
  return cl100k.encode(text).length;
}

const markdown = new MarkdownIt('commonmark');
const utf8 = new TextDecoder();

/** The first `maxTokens` tokens of `text` (cl100k_base), cut back to whole words when it is cut. */
export function firstTokens(text: string, maxTokens: number): string {
  const ids = cl100k.encode(text);
  if (ids.length <= maxTokens) return text;
  const head = utf8.decode(cl100k.decodeBytes(ids.subarray(0, maxTokens))).replace(/\uFFFD+$/, '');
  const lastSpace = head.search(/\s\S*$/);
  return (lastSpace > 0 ? head.slice(0, lastSpace) : head).trimEnd();
}

/**
 * The document's lead: the first paragraph of its opening, whitespace collapsed, at most `maxTokens`
 * tokens. The opening is the text before the first subsection (a section whose heading path is
 * deeper than one heading): for Markdown the text under the title and any text before it; for a
 * format without headings, its beginning. A document that starts straight with a subsection has
 * no lead: a section's own text is not what the whole document is about.
 */
export function documentLead(text: string, sections: readonly ExtractedSection[], maxTokens: number): string {
  if (maxTokens <= 0) return '';
  for (const section of sections) {
    if (section.headingPath.length > 1) break;
    const paragraph = text
      .slice(section.start, section.end)
      .split(/\n\s*\n/)
      .map((p) => p.replace(/\s+/g, ' ').trim())
      .find((p) => p.length > 0);
    if (paragraph) return firstTokens(paragraph, maxTokens);
  }
  return '';
}

/** Character offset of the start of each line of `text`. */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/**
 * Sections of a Markdown text by its headings (ATX and setext, as CommonMark parses them, so a `#`
 * inside a code block is not a heading). A section's body runs from the line after its heading to
 * the next heading; its path is the stack of enclosing headings.
 */
export function markdownSections(text: string): ExtractedSection[] {
  const tokens = markdown.parse(text, {});
  const starts = lineStarts(text);
  const offset = (line: number): number => (line < starts.length ? starts[line] : text.length);
  const headings: { level: number; title: string; lineStart: number; lineEnd: number }[] = [];
  tokens.forEach((token, i) => {
    if (token.type !== 'heading_open' || !token.map) return;
    const title = (tokens[i + 1]?.content ?? '').replace(/\s+/g, ' ').trim();
    headings.push({
      level: Number(token.tag.slice(1)),
      title,
      lineStart: token.map[0],
      lineEnd: token.map[1],
    });
  });
  const sections: ExtractedSection[] = [];
  const first = headings.length > 0 ? offset(headings[0].lineStart) : text.length;
  if (first > 0) sections.push({ headingPath: [], start: 0, end: first });
  const stack: { level: number; title: string }[] = [];
  headings.forEach((h, i) => {
    while (stack.length > 0 && stack[stack.length - 1].level >= h.level) stack.pop();
    stack.push({ level: h.level, title: h.title });
    const end = i + 1 < headings.length ? offset(headings[i + 1].lineStart) : text.length;
    sections.push({ headingPath: stack.map((s) => s.title).filter(Boolean), start: offset(h.lineEnd), end });
  });
  return sections;
}

/**
 * Splits a document into token-bounded chunks that follow its structure: first its sections (Markdown
 * headings, or the format's own sections such as PDF pages), then, inside a section, LangChain's
 * RecursiveCharacterTextSplitter on paragraphs, lines, then words, with `overlapTokens` of overlap
 * between consecutive chunks of a section. Every chunk is an exact slice of the extracted text, so
 * its offsets can be cited; its heading path travels with it into the embedding and the index.
 *
 * With `leadTokens`, the document's lead (documentLead) is embedded with every chunk too: a passage
 * deep in a manual ("adjust the straps evenly") rarely names what it is about, and neither does its
 * heading path when the title is generic ("Information about product item_number: 9"), while a
 * document's opening usually does ("SummitClimber Backpack, price $120"). A short form of what
 * Anthropic calls contextual retrieval (https://www.anthropic.com/news/contextual-retrieval), without
 * a model call: the context is the document's own first words.
 */
export class Chunker {
  /** LangChain's splitters, made on the first split (@langchain/textsplitters loads only when ingesting). */
  private splitters?: Promise<{
    markdown: RecursiveCharacterTextSplitter;
    plain: RecursiveCharacterTextSplitter;
  }>;

  constructor(readonly options: ChunkerOptions) {
    if (options.overlapTokens >= options.chunkTokens) {
      throw new RangeError(
        `chunk overlap (${options.overlapTokens} tokens) must be below the chunk size (${options.chunkTokens})`,
      );
    }
  }

  private loadSplitters(): NonNullable<Chunker['splitters']> {
    this.splitters ??= import('@langchain/textsplitters').then(
      ({ RecursiveCharacterTextSplitter: Splitter }) => {
        const common = {
          chunkSize: this.options.chunkTokens,
          chunkOverlap: this.options.overlapTokens,
          lengthFunction: countTokens,
          keepSeparator: true,
        };
        return {
          // Sections are already cut at headings; inside one, split at breaks, paragraphs, lines, sentences, words.
          markdown: new Splitter({
            ...common,
            separators: ['```\n\n', '\n\n***\n\n', '\n\n---\n\n', '\n\n', '\n', '. ', ' ', ''],
          }),
          plain: new Splitter({ ...common, separators: ['\n\n', '\n', '. ', ' ', ''] }),
        };
      },
    );
    return this.splitters;
  }

  /** The chunks of `doc`, in document order. */
  async split(doc: ExtractedDocument): Promise<DraftChunk[]> {
    const sections =
      doc.sections ??
      (doc.format === 'markdown'
        ? markdownSections(doc.text)
        : [{ headingPath: [], start: 0, end: doc.text.length }]);
    const splitters = await this.loadSplitters();
    const splitter = doc.format === 'markdown' ? splitters.markdown : splitters.plain;
    const lead = documentLead(doc.text, sections, this.options.leadTokens ?? 0);
    const chunks: DraftChunk[] = [];
    for (const section of sections) {
      const body = doc.text.slice(section.start, section.end);
      if (body.trim().length === 0) continue;
      let cursor = 0;
      for (const piece of await splitter.splitText(body)) {
        // Pieces are trimmed slices in order; overlap means the next one may start before the last one ended.
        let at = body.indexOf(piece, cursor);
        if (at === -1) at = body.indexOf(piece);
        if (at === -1) throw new Error('chunker: a chunk is not a slice of its section');
        cursor = at + 1;
        const heading = section.headingPath.join(' > ');
        const context = [lead, heading].filter(Boolean).join('\n');
        const embeddingText = context ? `${context}\n\n${piece}` : piece;
        chunks.push({
          ordinal: chunks.length,
          headingPath: section.headingPath,
          heading,
          start: section.start + at,
          end: section.start + at + piece.length,
          text: piece,
          tokenCount: countTokens(piece),
          embeddingText,
          contentHash: createHash('sha256').update(embeddingText).digest('hex'),
        });
      }
    }
    return chunks;
  }
}
