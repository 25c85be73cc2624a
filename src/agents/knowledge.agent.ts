import { join } from 'node:path';
import { KnowledgeBasesService } from '../knowledge/knowledge-bases.service';
import { RetrievalService, type RetrievedPassage as KnowledgePassage } from '../knowledge/retrieval.service';
import { EmbeddingsUnavailable } from '../inference/embeddings.errors';
import { EmbeddingsService } from '../inference/embeddings.service';
import { Agent } from './agent.decorator';
import type {
  ChatAgent,
  RetrievalOutcome,
  RetrievalTurn,
  RetrievedPassage,
  TurnConversation,
} from './chat-agent';

/**
 * Answers from the tenant's knowledge bases with citations. Reached by intent (questions about the
 * documentation, manuals, policies) in conversations bound to knowledge bases, or pinned
 * (`POST /v1/conversations { agent: "knowledge" }`).
 *
 * Each turn it retrieves the best KNOWLEDGE_SEARCH_K passages (hybrid retrieval, RetrievalService)
 * from the knowledge bases the conversation is bound to (all the tenant's when it is bound to none),
 * reusing the turn's one embedding of the user message, and the default prompt puts them in the
 * volatile tail of the user message: after the stable prefix and the history, so the engine's
 * prefix cache still serves both (docs/knowledge.md, "Answers with citations").
 */
@Agent({
  name: 'knowledge',
  description:
    'Answers questions about the documents in the knowledge base (manuals, guides, policies, FAQs), with citations.',
  examples: [
    'What does the manual say about this?',
    'According to the documentation, how do I set it up?',
    'Look it up in the knowledge base',
    'Which section of the guide explains the warranty?',
    'Find the answer in our documents',
    'What do the docs say about resetting the device?',
    'Check the user guide: how do I replace the filter?',
    'Is this covered by the policy document?',
    'Where in the handbook is the return process described?',
    'Search the product manual for the troubleshooting steps',
    'What are the specifications listed in the datasheet?',
    'Cite the document that describes the installation',
  ],
  template: join(__dirname, 'templates', 'knowledge.md'),
})
export class KnowledgeAgent implements ChatAgent {
  constructor(
    private readonly retrieval: RetrievalService,
    private readonly knowledgeBases: KnowledgeBasesService,
    private readonly embeddings: EmbeddingsService,
  ) {}

  /** Routed to by intent only in conversations bound to knowledge bases (pinning works in any). */
  routableFor(conversation: TurnConversation): boolean {
    return conversation.knowledgeBaseIds.length > 0;
  }

  /**
   * The passages for this turn, best first, each with its citation.
   * @throws EmbeddingsUnavailable never (retrieval falls back to full text); database errors as RetrievalService
   */
  async retrieve(turn: RetrievalTurn): Promise<RetrievalOutcome> {
    const { tenantId, knowledgeBaseIds: bound } = turn.conversation;
    const knowledgeBaseIds = bound.length > 0 ? bound : await this.knowledgeBases.ids(tenantId);
    if (knowledgeBaseIds.length === 0) return { passages: [] };
    const embedding = turn.embedding ?? (await this.embedOrNothing(turn.userMessage));
    const result = await this.retrieval.retrieve({
      tenantId,
      knowledgeBaseIds,
      query: turn.userMessage,
      ...(embedding ? { queryEmbedding: embedding } : {}),
      signal: turn.signal,
    });
    return {
      passages: result.passages.map((p, i) => toPromptPassage(p, i + 1)),
      ...(embedding && !turn.embedding ? { embedding } : {}),
    };
  }

  /** The message's embedding, or undefined when embeddings are down (retrieval then runs full text only). */
  private async embedOrNothing(text: string): Promise<number[] | undefined> {
    try {
      return await this.embeddings.embed(text);
    } catch (e) {
      if (e instanceof EmbeddingsUnavailable) return undefined;
      throw e;
    }
  }
}

/**
 * A knowledge passage as the prompt shows it: `(name v3 › Heading › Subheading)`. The version is in
 * the source on purpose: the volatile tail is part of the response cache's scope, so an answer that
 * cited version 3 is never served once version 4 is what retrieval returns.
 */
export function toPromptPassage(p: KnowledgePassage, index: number): RetrievedPassage {
  const heading = p.headingPath.length > 0 ? ` › ${p.headingPath.join(' › ')}` : '';
  return {
    source: `${p.documentName} v${p.version}${heading}`,
    text: p.text,
    score: p.score,
    citation: {
      index,
      documentId: p.documentId,
      documentName: p.documentName,
      knowledgeBaseId: p.knowledgeBaseId,
      version: p.version,
      headingPath: p.headingPath,
      start: p.start,
      end: p.end,
      score: p.score,
      chunkId: p.chunkId,
    },
  };
}
