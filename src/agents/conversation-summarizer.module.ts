import { Global, Module } from '@nestjs/common';
import { CONVERSATION_SUMMARIZER } from '../context/conversation-summarizer';
import { AgentsModule } from './agents.module';
import { SummarizerAgent } from './summarizer.agent';

/**
 * Binds ContextModule's CONVERSATION_SUMMARIZER to the summarizer agent, so the `summaries` job
 * writes rolling summaries through the agent's prompt. Global because the binding points against
 * the import direction: AgentsModule imports ContextModule, which cannot import it back; a global
 * module makes the token visible to ContextModule without a cycle (or `forwardRef`). Import it once,
 * next to AgentsModule (AppModule).
 */
@Global()
@Module({
  imports: [AgentsModule],
  providers: [{ provide: CONVERSATION_SUMMARIZER, useExisting: SummarizerAgent }],
  exports: [CONVERSATION_SUMMARIZER],
})
export class ConversationSummarizerModule {}
