import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/**
 * A prompt template read from a file: a YAML front matter with its `name` and `version`, then the
 * text. The version is what a turn records (`templateVersion`); bump it whenever the text changes,
 * because the text is part of the engine's cached prefix for every conversation.
 *
 * ```
 * ---
 * name: global
 * version: 1
 * ---
 * You are kvchat, ...
 * ```
 */
export interface PromptTemplate {
  name: string;
  version: string;
  /** The text after the front matter, trimmed. Byte-identical on every load of the same file. */
  text: string;
  /** sha256 of `text`, hex (first 12 characters): tells two texts with the same version apart. */
  hash: string;
  path: string;
}

/** A template file that is not `--- name/version --- text`. */
export class PromptTemplateError extends Error {
  constructor(path: string, reason: string) {
    super(`prompt template ${path}: ${reason}`);
    this.name = 'PromptTemplateError';
  }
}

const FRONT_MATTER = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/;
const cache = new Map<string, PromptTemplate>();

/**
 * Reads a template file once per process (later calls return the same object, so the prefix a
 * process sends never changes under it even if the file is edited on disk).
 * @throws PromptTemplateError when the front matter is missing or lacks `name`/`version`, or the text is empty
 */
export function loadPromptTemplate(path: string): PromptTemplate {
  const known = cache.get(path);
  if (known) return known;
  const raw = readFileSync(path, 'utf8');
  const match = FRONT_MATTER.exec(raw);
  if (!match)
    throw new PromptTemplateError(path, 'expected a front matter block (--- name, version ---) first');
  const meta = (parseYaml(match[1]) ?? {}) as Record<string, unknown>;
  const name = meta.name;
  const version = meta.version;
  if (typeof name !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(name)) {
    throw new PromptTemplateError(path, '`name` must be a lowercase identifier');
  }
  if ((typeof version !== 'string' && typeof version !== 'number') || String(version).trim() === '') {
    throw new PromptTemplateError(path, '`version` is required');
  }
  const text = match[2].trim();
  if (text === '') throw new PromptTemplateError(path, 'the template text is empty');
  const template: PromptTemplate = {
    name,
    version: String(version),
    text,
    hash: createHash('sha256').update(text).digest('hex').slice(0, 12),
    path,
  };
  cache.set(path, template);
  return template;
}

/** The stable prefix made of several templates, in order, and its version (`global@1+assistant@1`). */
export interface ComposedPrefix {
  text: string;
  templateVersion: string;
}

/**
 * Joins templates into one stable prefix (blank line between them). Deterministic: the same
 * templates give byte-identical text, and the version string names every template and its version.
 */
export function composeStablePrefix(templates: readonly PromptTemplate[]): ComposedPrefix {
  return {
    text: templates.map((t) => t.text).join('\n\n'),
    templateVersion: templates.map((t) => `${t.name}@${t.version}`).join('+'),
  };
}
