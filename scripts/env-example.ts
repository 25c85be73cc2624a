import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';
import { CONFIG_CLASSES } from '../src/config/config.registry';

/**
 * Writes config/.env.example from the configuration classes in src/config: each class becomes a
 * section (its docstring's first line as the heading), each property a commented variable with its
 * default as an instance of the class holds it (commented out when it has none), so the file boots
 * unchanged when copied to `.env`. `npm run config:example` regenerates it; a unit spec
 * checks it lists every variable.
 */
const CONFIG_DIR = join(__dirname, '..', '..', 'src', 'config');
const OUT = join(__dirname, '..', '..', 'config', '.env.example');

/** Every variable's default, read from an instance of its class. */
const defaults = new Map<string, unknown>(
  CONFIG_CLASSES.flatMap((cls) => Object.entries(new (cls as new () => object)())),
);

/** A default as the loader parses it back: lists comma-separated; undefined for none. */
function renderDefault(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String).join(',');
  return String(value as string | number | boolean);
}

function docOf(node: ts.Node, source: ts.SourceFile): string {
  const ranges = ts.getLeadingCommentRanges(source.text, node.getFullStart()) ?? [];
  const jsdoc = ranges
    .map((r) => source.text.slice(r.pos, r.end))
    .filter((c) => c.startsWith('/**'))
    .pop();
  if (!jsdoc) return '';
  return jsdoc
    .replace(/^\/\*\*|\*\/$/g, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, '').trim())
    .filter((l) => l.length > 0)
    .join(' ');
}

const sections: string[] = [
  '# kvchat configuration. Every variable, its default, and what it does.',
  '# Copy to .env (read from the working directory at startup) or set in the environment; the environment wins.',
  '# Generated from src/config by `npm run config:example`.',
  '',
];
for (const file of readdirSync(CONFIG_DIR)
  .filter((f) => f.endsWith('.config.ts'))
  .sort()) {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(CONFIG_DIR, file), 'utf8'),
    ts.ScriptTarget.ES2022,
    true,
  );
  source.forEachChild((node) => {
    if (!ts.isClassDeclaration(node) || !node.name) return;
    const heading = docOf(node, source) || node.name.text;
    sections.push(`# --- ${node.name.text}: ${heading}`);
    for (const member of node.members) {
      if (!ts.isPropertyDeclaration(member) || !ts.isIdentifier(member.name)) continue;
      const name = member.name.text;
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
      const doc = docOf(member, source);
      if (doc) sections.push(`# ${doc}`);
      // The default as the class really holds it (an initialiser may be an expression, e.g. a spread).
      const value = renderDefault(defaults.get(name));
      sections.push(value === undefined ? `# ${name}=` : `${name}=${value}`);
    }
    sections.push('');
  });
}
writeFileSync(OUT, sections.join('\n'));
console.log(`wrote ${OUT}`);
