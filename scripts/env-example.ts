import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

/**
 * Writes config/.env.example from the configuration classes in src/config: each class becomes a
 * section (its docstring's first line as the heading), each property a commented variable with its
 * default (or commented out when it has none). `npm run config:example` regenerates it; a unit spec
 * checks it lists every variable.
 */
const CONFIG_DIR = join(__dirname, '..', '..', 'src', 'config');
const OUT = join(__dirname, '..', '..', 'config', '.env.example');

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
      const init = member.initializer;
      let value: string | undefined;
      if (init) {
        if (ts.isStringLiteral(init) || ts.isNoSubstitutionTemplateLiteral(init)) value = init.text;
        else if (ts.isNumericLiteral(init)) value = init.text.replace(/_/g, '');
        else if (ts.isPrefixUnaryExpression(init)) value = init.getText(source).replace(/_/g, '');
        else if (init.kind === ts.SyntaxKind.TrueKeyword) value = 'true';
        else if (init.kind === ts.SyntaxKind.FalseKeyword) value = 'false';
        else if (ts.isArrayLiteralExpression(init))
          value = init.elements.map((e) => (ts.isStringLiteral(e) ? e.text : e.getText(source))).join(',');
        else value = init.getText(source).replace(/_/g, '');
      }
      sections.push(value === undefined ? `# ${name}=` : `${name}=${value}`);
    }
    sections.push('');
  });
}
writeFileSync(OUT, sections.join('\n'));
console.log(`wrote ${OUT}`);
