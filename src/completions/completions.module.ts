import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { CachingModule } from '../caching/caching.module';
import { InferenceModule } from '../inference/inference.module';
import { ChatCompletionsController } from './chat-completions.controller';
import { ChatCompletionsService } from './chat-completions.service';
import { EmbeddingsController } from './embeddings.controller';
import { EmbeddingsProxyService } from './embeddings.service';
import { ExactHitHook } from './exact-hit.hook';

/**
 * OpenAI-compatible `POST /v1/chat/completions`, `POST /v1/embeddings` and `GET /v1/models`, stateless,
 * with the response cache and the embeddings cache; errors in OpenAI's shape. Exact hits of non-streamed
 * chat completions are answered before Nest's router (ExactHitHook).
 */
@Module({
  imports: [InferenceModule, CachingModule, AuthModule, IdempotencyModule],
  controllers: [ChatCompletionsController, EmbeddingsController],
  providers: [ChatCompletionsService, EmbeddingsProxyService, ExactHitHook],
})
export class CompletionsModule {}
