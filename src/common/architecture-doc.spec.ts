import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const examples = join(root, 'docs', 'examples');

describe('docs/architecture.md extension points', () => {
  const page = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
  const blocks = [...page.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

  it.each(readdirSync(examples).filter((f) => f.endsWith('.ts')))(
    'should show docs/examples/%s verbatim (the file is what typecheck compiles)',
    (file) => {
      expect(blocks).toContain(readFileSync(join(examples, file), 'utf8'));
    },
  );

  it.each(['ENGINE_ADAPTER', 'RESPONSE_CACHE_STORE', 'VECTOR_INDEX'])(
    'should name the registration of %s as the code binds it',
    (token) => {
      const modules = ['src/inference/inference.module.ts', 'src/caching/caching.module.ts'].map((f) =>
        readFileSync(join(root, f), 'utf8'),
      );
      const bound = modules.join('\n').match(new RegExp(`\\{ provide: ${token}, useClass: \\w+ \\}`));
      expect(bound).not.toBeNull();
      expect(page).toContain(`{ provide: ${token}, useClass:`);
    },
  );
});
