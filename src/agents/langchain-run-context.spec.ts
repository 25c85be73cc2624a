import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { RunnableLambda, type RunnableConfig } from '@langchain/core/runnables';
import { AsyncLocalStorageProviderSingleton } from '@langchain/core/singletons';
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { isRunTree } from 'langsmith/run_trees';

/**
 * patches/@langchain+core+*.patch (applied by patch-package at npm install): with no callbacks and no
 * tracing, @langchain/core carries a runnable's config in a plain object instead of building a LangSmith
 * RunTree (a uuid7, timestamps and environment reads) on every runnable call of every turn. What the
 * patch must keep: the config reaches nested runnables and graph nodes, and a callback handler still
 * gets its run tree.
 */
describe('LangChain run context (patched @langchain/core)', () => {
  const store = () => AsyncLocalStorageProviderSingleton.getInstance().getStore() as unknown;

  it('should carry the config without a RunTree when nothing traces', async () => {
    const seen: { runTree: boolean; tag?: string }[] = [];
    const inner = RunnableLambda.from((_: number, config?: RunnableConfig) => {
      seen.push({ runTree: isRunTree(store()), tag: config?.metadata?.tenant as string | undefined });
      return 1;
    });
    const outer = RunnableLambda.from(async (x: number) => {
      seen.push({
        runTree: isRunTree(store()),
        tag: AsyncLocalStorageProviderSingleton.getRunnableConfig()?.metadata?.tenant as string | undefined,
      });
      return inner.invoke(x);
    });

    await outer.invoke(0, { metadata: { tenant: 't1' } });

    expect(seen).toEqual([
      { runTree: false, tag: 't1' },
      { runTree: false, tag: 't1' },
    ]);
  });

  it('should give a LangGraph node the run config', async () => {
    const State = Annotation.Root({ tenant: Annotation<string | undefined>() });
    const graph = new StateGraph(State)
      .addNode('read', (_s: typeof State.State, config?: RunnableConfig) => ({
        tenant: config?.configurable?.tenant as string | undefined,
      }))
      .addEdge(START, 'read')
      .addEdge('read', END)
      .compile();

    await expect(graph.invoke({}, { configurable: { tenant: 't2' } })).resolves.toEqual({ tenant: 't2' });
  });

  it('should still build a run tree when a callback handler listens', async () => {
    const started: string[] = [];
    class Listener extends BaseCallbackHandler {
      override name = 'listener';
      override handleChainStart(_chain: unknown, _inputs: unknown, runId: string): void {
        started.push(runId);
      }
    }
    let runTree = false;
    const lambda = RunnableLambda.from(() => {
      runTree = isRunTree(store());
      return 1;
    });

    await lambda.invoke(0, { callbacks: [new Listener()] });

    expect(started).toHaveLength(1);
    expect(runTree).toBe(true);
  });
});
