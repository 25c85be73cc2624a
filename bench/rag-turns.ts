import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Module } from '@nestjs/common';
import { Command } from 'commander';
import { Agent } from '../src/agents/agent.decorator';
import { AgentsModule } from '../src/agents/agents.module';
import {
  type AgentTurn,
  type ChatAgent,
  type RetrievalOutcome,
  type RetrievalTurn,
  renderPassages,
} from '../src/agents/chat-agent';
import { KnowledgeAgent } from '../src/agents/knowledge.agent';
import { createApp } from '../src/app.factory';
import { ApiKeyService } from '../src/auth/api-key.service';
import type { ComposedPrefix } from '../src/context/prompt-template';
import type { PromptSpec } from '../src/context/prompt.types';
import { readJsonl, round } from './harness';

/**
 * `npm run bench:rag-turns`: prefix-cache reuse of multi-turn knowledge conversations, for two
 * places of the retrieved passages:
 * - `tail` (the `knowledge` agent): stable prefix, history, then the user message with its passages
 *   in the volatile tail. The user message is stored as sent, so later turns replay it byte for byte;
 * - `prefix` (a bench-only agent): the passages appended to the system prompt, history and message after.
 *
 * Each conversation asks `--turns` questions of `--qa` (consecutive questions of one document, as a
 * user reading about one product would) to the in-process engine simulator (time scale 0), with the
 * response cache bypassed, and records per turn the engine's `usage.cachedTokens / promptTokens`.
 * `summary.<layout>.laterTurns.prefixReuse` = sum of cached / sum of prompt tokens over turns 2..n.
 */

@Agent({
  name: 'knowledge_prefix',
  description: 'Bench only: the knowledge agent with its passages in the system prompt.',
  template: {
    version: 1,
    text: 'Role: knowledge-base assistant. Answer from the numbered passages and cite them as [n].',
  },
})
class PassagesInPrefixAgent implements ChatAgent {
  constructor(private readonly knowledge: KnowledgeAgent) {}

  retrieve(turn: RetrievalTurn): Promise<RetrievalOutcome> {
    return this.knowledge.retrieve(turn);
  }

  prompt(turn: AgentTurn, prefix: ComposedPrefix): PromptSpec {
    const passages = renderPassages(turn.retrieved ?? []);
    return {
      stablePrefix: passages ? `${prefix.text}\n\n${passages}` : prefix.text,
      templateVersion: prefix.templateVersion,
      history: turn.messages,
      userMessage: turn.userMessage,
    };
  }
}

@Module({ imports: [AgentsModule], providers: [PassagesInPrefixAgent] })
class BenchAgentsModule {}

interface Qa {
  doc: string;
  question: string;
}

interface TurnBody {
  assistantMessage: {
    usage: { promptTokens: number; cachedTokens: number };
    citations: unknown[] | null;
  };
}

interface TurnFigure {
  turn: number;
  promptTokens: number;
  cachedTokens: number;
  citations: number;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--docs <dir>', 'folder of documents', '../shared/data/rag/contoso_manuals')
    .option('--qa <jsonl>', 'questions ({doc, question})', '../shared/data/rag/contoso_faq_qa.jsonl')
    .option('--conversations <n>', 'conversations per layout', '6')
    .option('--turns <n>', 'turns per conversation (the FAQ file has 5 questions for most documents)', '5')
    .option('--out <file>', 'JSON report', 'bench/reports/rag-turns.json')
    .parse()
    .opts<{ docs: string; qa: string; conversations: string; turns: string; out: string }>();
  const conversations = Number(opts.conversations);
  const turns = Number(opts.turns);

  const running = await createApp(
    {
      DATA_DIR: 'memory://',
      EMBEDDED_DB_PORT: '0',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      SIMULATOR_TIME_SCALE: '0',
      PROMPT_DATE_IN_TAIL: 'false',
      REDIS_KEY_PREFIX: `kvchat-bench-${process.pid}-${Date.now()}:`,
    },
    { port: 0, host: '127.0.0.1', imports: [BenchAgentsModule] },
  );
  try {
    const key = (await running.app.get(ApiKeyService).create(`rag-turns-${Date.now()}`)).key;
    const call = async <T = Record<string, unknown>>(path: string, body?: unknown): Promise<T> => {
      const response = await fetch(`${running.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json: unknown = await response.json();
      if (!response.ok) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(json)}`);
      return json as T;
    };

    const kb = (await call<{ id: string }>('/v1/knowledge-bases', { name: 'bench' })).id;
    const files = readdirSync(opts.docs).filter((f) => f.endsWith('.md'));
    for (const file of files) {
      const accepted = await call<{ documents: { ingestionId: string }[] }>(
        `/v1/knowledge-bases/${kb}/documents`,
        {
          name: basename(file),
          content: readFileSync(join(opts.docs, file), 'utf8'),
        },
      );
      const ingestionId = accepted.documents[0].ingestionId;
      for (;;) {
        const state = await call<{ status: string; error: string | null }>(
          `/v1/knowledge-bases/${kb}/ingestions/${ingestionId}`,
        );
        if (state.status === 'failed') throw new Error(`${file}: ${state.error}`);
        if (state.status === 'ready') break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    // Questions grouped by document: a conversation reads about one product.
    const byDoc = new Map<string, string[]>();
    for (const q of await readJsonl<Qa>(opts.qa)) byDoc.set(q.doc, [...(byDoc.get(q.doc) ?? []), q.question]);
    const threads = [...byDoc.values()].filter((qs) => qs.length >= turns).slice(0, conversations);

    const report: Record<string, unknown> = {};
    for (const [layout, agent] of [
      ['tail', 'knowledge'],
      ['prefix', 'knowledge_prefix'],
    ] as const) {
      const figures: TurnFigure[] = [];
      for (const questions of threads) {
        const id = (await call<{ id: string }>('/v1/conversations', { agent, knowledgeBaseIds: [kb] })).id;
        for (let t = 0; t < turns; t++) {
          const turn = await call<TurnBody>(`/v1/conversations/${id}/turns`, {
            content: questions[t],
            cache: { mode: 'bypass' },
          });
          const m = turn.assistantMessage;
          figures.push({
            turn: t + 1,
            promptTokens: m.usage.promptTokens,
            cachedTokens: m.usage.cachedTokens,
            citations: m.citations?.length ?? 0,
          });
        }
      }
      const sum = (fs: TurnFigure[], k: 'promptTokens' | 'cachedTokens') => fs.reduce((n, f) => n + f[k], 0);
      const later = figures.filter((f) => f.turn > 1);
      const perTurn = Array.from({ length: turns }, (_, i) => {
        const at = figures.filter((f) => f.turn === i + 1);
        return {
          turn: i + 1,
          promptTokens: round(sum(at, 'promptTokens') / at.length, 1),
          prefixReuse: round(sum(at, 'cachedTokens') / Math.max(1, sum(at, 'promptTokens')), 3),
        };
      });
      report[layout] = {
        agent,
        laterTurns: {
          turns: later.length,
          promptTokens: sum(later, 'promptTokens'),
          cachedTokens: sum(later, 'cachedTokens'),
          prefixReuse: round(sum(later, 'cachedTokens') / Math.max(1, sum(later, 'promptTokens')), 3),
        },
        citationsPerTurn: round(figures.reduce((n, f) => n + f.citations, 0) / figures.length, 2),
        perTurn,
      };
    }
    const out = {
      summary: {
        tail: (report.tail as { laterTurns: unknown }).laterTurns,
        prefix: (report.prefix as { laterTurns: unknown }).laterTurns,
      },
      ...report,
      setup: { documents: files.length, conversations: threads.length, turns, cpus: cpus().length },
      loadAverage: loadavg().map((x) => round(x, 2)),
    };
    mkdirSync(dirname(resolve(opts.out)), { recursive: true });
    writeFileSync(opts.out, `${JSON.stringify(out, null, 2)}\n`);
    console.log(JSON.stringify(out, null, 2));
  } finally {
    await running.close();
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
