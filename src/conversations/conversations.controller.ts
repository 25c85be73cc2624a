import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../auth/api-key.service';
import { Auth, RequireScopes } from '../auth/auth.guard';
import { ApiProblems } from '../common/api-problems.decorator';
import { toProblem } from '../common/problem.filter';
import { SchemaBody } from '../common/schema-body.decorator';
import { clientDisconnectSignal, SseWriter } from '../common/sse';
import { AppConfig } from '../config/app.config';
import { AdmittedAsTurn } from '../lifecycle/turn-admission.hook';
import {
  Idempotent,
  type IdempotentRoute,
  publishIdempotentResult,
} from '../idempotency/idempotency.interceptor';
import { ConversationsService, type TurnRecord } from './conversations.service';
import {
  ConversationDto,
  ConversationPageDto,
  CreateConversationDto,
  PageQueryDto,
} from './dto/conversation.dto';
import { MessageDto, MessagePageDto } from './dto/message.dto';
import { PostTurnDto, TurnResponseDto } from './dto/turn.dto';
import { isPlainPostTurnBody } from './dto/turn.schema';

const uuid = new ParseUUIDPipe({ version: undefined });

/** Creating a conversation: JSON only. */
const CREATE_ROUTE: IdempotentRoute = { wantsStream: () => false, replayStream: () => undefined };

/** A turn: a streamed replay is the whole answer as one `token` event, then the `turn` event. */
const TURN_ROUTE: IdempotentRoute = {
  wantsStream: (request) =>
    (request.body as { stream?: unknown } | undefined)?.stream === true ||
    (request.headers.accept ?? '').includes('text/event-stream'),
  replayStream: (sse, response) => {
    const turn = response.body as TurnResponseDto;
    sse.send('token', { delta: turn.assistantMessage.content });
    sse.send('turn', turn);
  },
};

/** Maps a stored turn to its response (usage, timings, cache and route are the assistant message's). */
export function toTurnResponse(record: TurnRecord): TurnResponseDto {
  return {
    conversationId: record.conversation.id,
    userMessage: MessageDto.from(record.userMessage),
    assistantMessage: {
      ...MessageDto.from(record.assistantMessage),
      ...(record.savings ? { savings: record.savings } : {}),
    },
  };
}

@ApiTags('conversations')
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@RequireScopes('chat')
@Controller('v1/conversations')
export class ConversationsController {
  constructor(
    private readonly conversations: ConversationsService,
    private readonly config: AppConfig,
  ) {}

  @Post()
  @Idempotent(CREATE_ROUTE)
  @ApiOperation({ summary: 'Create a conversation' })
  @ApiCreatedResponse({ type: ConversationDto })
  @ApiProblems(400)
  async create(@Auth() auth: AuthContext, @Body() body: CreateConversationDto): Promise<ConversationDto> {
    return ConversationDto.from(await this.conversations.create(auth, body));
  }

  @Get()
  @ApiOperation({ summary: 'List conversations, newest first (cursor pages)' })
  @ApiOkResponse({ type: ConversationPageDto })
  @ApiProblems(400)
  async list(@Auth() auth: AuthContext, @Query() query: PageQueryDto): Promise<ConversationPageDto> {
    const page = await this.conversations.list(auth, query.limit ?? 20, query.cursor);
    return { data: page.items.map((c) => ConversationDto.from(c)), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a conversation' })
  @ApiOkResponse({ type: ConversationDto })
  @ApiProblems(400, 404)
  async get(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<ConversationDto> {
    return ConversationDto.from(await this.conversations.get(auth, id));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a conversation and its messages' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404)
  async remove(@Auth() auth: AuthContext, @Param('id', uuid) id: string): Promise<void> {
    await this.conversations.remove(auth, id);
  }

  @Get(':id/messages')
  @ApiOperation({ summary: 'List messages in conversation order (cursor pages)' })
  @ApiOkResponse({ type: MessagePageDto })
  @ApiProblems(400, 404)
  async messages(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @Query() query: PageQueryDto,
  ): Promise<MessagePageDto> {
    const page = await this.conversations.messages(auth, id, query.limit ?? 50, query.cursor);
    return { data: page.items.map((m) => MessageDto.from(m)), nextCursor: page.nextCursor };
  }

  @Post(':id/turns')
  @ApiBody({ type: PostTurnDto })
  @AdmittedAsTurn()
  @Idempotent(TURN_ROUTE)
  @ApiOperation({
    summary: 'Post a user turn and get the answer',
    description:
      'Stores the user message, answers it and stores the answer. With `stream: true` or ' +
      '`Accept: text/event-stream` the answer streams as Server-Sent Events: a `citations` event ' +
      '(`{"citations": [...]}`: document, version, heading path, offsets, score of each passage given to the ' +
      'answer; only agents that retrieve, such as `knowledge`) before any token, `token` events ' +
      '(`{"delta": "..."}`), then one `turn` event carrying the stored turn (the JSON response ' +
      'below), or an `error` event with a problem body if the engine fails mid-stream. Turns of ' +
      'one conversation are serialised. On engine failure the user message is kept with status ' +
      '`failed` and no answer is stored.',
  })
  @ApiProduces('application/json', 'text/event-stream')
  @ApiCreatedResponse({ type: TurnResponseDto, description: 'The stored turn (JSON, without streaming).' })
  @ApiOkResponse({
    description:
      'With `stream: true` or `Accept: text/event-stream`: a `text/event-stream` of an optional ' +
      '`citations` event, `token` events ' +
      '(`data: {"delta": "..."}`), then one `turn` event whose data is the stored turn (the 201 body), or an ' +
      '`error` event whose data is a problem (the turn is marked failed).',
    content: {
      'text/event-stream': {
        schema: { type: 'string' },
        example:
          'event: citations\ndata: {"citations":[{"index":1,"documentName":"router.md","version":2,...}]}\n\n' +
          'event: token\ndata: {"delta":"A KV cache"}\n\n' +
          'event: token\ndata: {"delta":" stores"}\n\n' +
          'event: turn\ndata: {"conversationId":"...","userMessage":{...},"assistantMessage":{...}}\n\n',
      },
    },
  })
  @ApiProblems(400, 404, 409, 413, 502, 503, 504)
  async turn(
    @Auth() auth: AuthContext,
    @Param('id', uuid) id: string,
    @SchemaBody(isPlainPostTurnBody) body: PostTurnDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TurnResponseDto | undefined> {
    const wantsStream = body.stream === true || (request.headers.accept ?? '').includes('text/event-stream');
    const command = {
      content: body.content,
      maxTokens: body.maxTokens,
      temperature: body.temperature,
      cache: body.cache,
      streamed: wantsStream,
      requestId: String(request.id),
    };
    const signal = clientDisconnectSignal(reply);
    if (!wantsStream) {
      const record = await this.conversations.run(auth, id, command, signal);
      void reply.status(201);
      return toTurnResponse(record);
    }
    // SSE: `citations` (agents that retrieve; before any token), `token` events, then `turn` (the stored turn)
    // or `error` (a problem). route/cache/usage are in the `turn` event's assistant message.
    const sse = new SseWriter(reply, { flushIntervalMs: this.config.SSE_FLUSH_INTERVAL_MS });
    let record: TurnRecord;
    try {
      record = await this.conversations.run(auth, id, command, signal, (event) => {
        if (event.type === 'token') sse.send('token', { delta: event.delta }, true);
        else if (event.type === 'citations') sse.send('citations', { citations: event.citations });
      });
    } catch (e) {
      if (!sse.isStarted) throw e;
      sse.send('error', toProblem(e, request.url, String(request.id)));
      sse.end();
      return undefined;
    }
    const response = toTurnResponse(record);
    publishIdempotentResult(request, 201, response);
    sse.send('turn', response);
    sse.end();
    return undefined;
  }
}
