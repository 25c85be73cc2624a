import { extname } from 'node:path';
import type TurndownService from 'turndown';
import { DOCUMENT_CONTENT_TYPES, type DocumentContentType } from './knowledge-document.entity';
import { DocumentUnreadable, UnsupportedDocumentType } from './knowledge.errors';

/** A section of extracted text that the format itself delimits (a PDF page). */
export interface ExtractedSection {
  headingPath: string[];
  /** Offsets in `text`, characters; `end` exclusive. */
  start: number;
  end: number;
}

/** The text of a document, ready to chunk. Offsets of chunks and citations refer to `text`. */
export interface ExtractedDocument {
  /** Markdown (for Markdown and HTML) or plain text (for text and PDF), with `\n` line ends. */
  text: string;
  /** `markdown`: headings structure the text. `plain`: paragraphs only, or `sections` given. */
  format: 'markdown' | 'plain';
  /** Sections known from the format (PDF pages); Markdown sections come from its headings. */
  sections?: ExtractedSection[];
}

const EXTENSIONS: Record<string, DocumentContentType> = {
  '.md': 'text/markdown',
  '.markdown': 'text/markdown',
  '.mdown': 'text/markdown',
  '.txt': 'text/plain',
  '.text': 'text/plain',
  '.html': 'text/html',
  '.htm': 'text/html',
  '.xhtml': 'text/html',
  '.pdf': 'application/pdf',
};

const ALIASES: Record<string, DocumentContentType> = {
  'text/x-markdown': 'text/markdown',
  'application/xhtml+xml': 'text/html',
  'application/x-pdf': 'application/pdf',
};

/** Types that say nothing about the content: the file extension decides. */
const GENERIC = new Set([
  '',
  'application/octet-stream',
  'binary/octet-stream',
  'application/x-www-form-urlencoded',
]);

/** File extensions the parser reads (for folders walked by the CLI). */
export const SUPPORTED_EXTENSIONS = Object.keys(EXTENSIONS);

/**
 * The content type of an upload: the declared MIME type when it is one the parser reads (parameters
 * such as `charset` ignored), else the file extension of `name` when the declared type is generic
 * (absent, `application/octet-stream`) or plain text for a Markdown file.
 * @throws UnsupportedDocumentType (415) naming the supported types
 */
export function resolveContentType(name: string, declared?: string | null): DocumentContentType {
  const base = (declared ?? '').split(';')[0].trim().toLowerCase();
  const byExtension = EXTENSIONS[extname(name).toLowerCase()] as DocumentContentType | undefined;
  const byDeclared: DocumentContentType | undefined =
    ALIASES[base] ??
    ((DOCUMENT_CONTENT_TYPES as readonly string[]).includes(base)
      ? (base as DocumentContentType)
      : undefined);
  // Browsers and curl often label .md files text/plain: the extension knows better.
  if (byDeclared === 'text/plain' && byExtension === 'text/markdown') return byExtension;
  if (byDeclared) return byDeclared;
  if (GENERIC.has(base) && byExtension) return byExtension;
  throw new UnsupportedDocumentType(
    `${declared ? `Content type ${base}` : `The type of "${name}"`} is not supported: send one of ` +
      `${DOCUMENT_CONTENT_TYPES.join(', ')} (or a file named ${SUPPORTED_EXTENSIONS.join(', ')}).`,
    { supportedTypes: [...DOCUMENT_CONTENT_TYPES] },
  );
}

/**
 * The HTML converter, made on the first HTML document: turndown and PDF.js (pdf-parse) load only when a
 * document needs them, so an app that never ingests HTML or PDF does not pay for them at boot or in memory.
 */
let turndown: Promise<TurndownService> | undefined;
function htmlConverter(): Promise<TurndownService> {
  turndown ??= import('turndown').then(({ default: Turndown }) => {
    const converter = new Turndown({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' });
    converter.remove(['script', 'style', 'noscript', 'template', 'head', 'iframe', 'object', 'embed']);
    return converter;
  });
  return turndown;
}

function decodeUtf8(bytes: Uint8Array, name: string): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    return text.replace(/\r\n?/g, '\n');
  } catch {
    throw new DocumentUnreadable(`${name} is not valid UTF-8 text.`);
  }
}

/** Text of each PDF page, by Mozilla's PDF.js (through pdf-parse). */
async function pdfPages(bytes: Uint8Array, name: string): Promise<string[]> {
  const { PDFParse } = await import('pdf-parse');
  const parser = new PDFParse({ data: new Uint8Array(bytes) });
  try {
    const result = await parser.getText();
    return result.pages.map((p) => p.text.replace(/\r\n?/g, '\n'));
  } catch (e) {
    throw new DocumentUnreadable(
      `${name} is not a readable PDF: ${e instanceof Error ? e.message : String(e)}`,
    );
  } finally {
    await parser.destroy().catch(() => undefined);
  }
}

/**
 * Extracts a document's text: UTF-8 Markdown and text as they are (line ends normalised), HTML
 * converted to Markdown by turndown (headings kept, scripts and styles dropped), PDF as the text of
 * its pages, one section per page.
 * @throws DocumentUnreadable for bytes that are not valid UTF-8 text, a PDF that PDF.js cannot read,
 *   or a document with no text at all
 */
export async function extractText(
  bytes: Uint8Array,
  contentType: DocumentContentType,
  name: string,
): Promise<ExtractedDocument> {
  let doc: ExtractedDocument;
  switch (contentType) {
    case 'text/markdown':
      doc = { text: decodeUtf8(bytes, name), format: 'markdown' };
      break;
    case 'text/plain':
      doc = { text: decodeUtf8(bytes, name), format: 'plain' };
      break;
    case 'text/html':
      doc = { text: (await htmlConverter()).turndown(decodeUtf8(bytes, name)), format: 'markdown' };
      break;
    case 'application/pdf': {
      const pages = await pdfPages(bytes, name);
      const sections: ExtractedSection[] = [];
      let text = '';
      pages.forEach((page, i) => {
        if (text) text += '\n\n';
        sections.push({ headingPath: [`Page ${i + 1}`], start: text.length, end: text.length + page.length });
        text += page;
      });
      doc = { text, format: 'plain', sections };
      break;
    }
  }
  if (doc.text.trim().length === 0) throw new DocumentUnreadable(`${name} contains no text.`);
  return doc;
}
