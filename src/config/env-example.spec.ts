import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { variablesOf } from './config.loader';
import { CONFIG_CLASSES } from './config.registry';

describe('config/.env.example', () => {
  const sut = readFileSync(join(__dirname, '..', '..', 'config', '.env.example'), 'utf8');
  const listed = new Set([...sut.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

  it('should list every variable of every configuration class (run `npm run config:example`)', () => {
    const declared = CONFIG_CLASSES.flatMap((cls) => variablesOf(cls as new () => object));
    expect(declared.filter((v) => !listed.has(v))).toEqual([]);
  });

  it('should list no variable that no configuration class declares', () => {
    const declared = new Set(CONFIG_CLASSES.flatMap((cls) => variablesOf(cls as new () => object)));
    expect([...listed].filter((v) => !declared.has(v))).toEqual([]);
  });
});
