import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';

/** RFC 9457 problem details, as every error response of this API is shaped. */
export class ProblemDto {
  @ApiProperty({ example: 'https://kvchat.dev/problems/ConversationNotFound' }) type!: string;
  @ApiProperty({ example: 'Not Found' }) title!: string;
  @ApiProperty({ example: 404 }) status!: number;
  @ApiProperty({ example: 'Conversation 0b6c... does not exist.' }) detail!: string;
  @ApiProperty({ example: '/v1/conversations/0b6c...' }) instance!: string;
  @ApiProperty({ example: 'ConversationNotFound', description: 'Stable machine-readable code.' })
  code!: string;
  @ApiProperty({ description: 'Request id, also in the x-request-id header and the logs.' })
  requestId!: string;
  @ApiPropertyOptional({ type: [String], description: 'Validation messages, each naming its field.' })
  errors?: string[];
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Validation failed (the message names the field), or the request is not acceptable.',
  401: 'Missing, unknown or revoked API key.',
  403: 'The key may not do this.',
  404: 'Not found (or owned by another tenant).',
  409: 'The conversation is busy with another turn for too long.',
  413: 'The message or body is too large.',
  429: 'Over a requests- or tokens-per-minute limit, or a spent budget (docs/usage.md); see Retry-After and x-ratelimit-*.',
  502: 'The engine failed or its stream was cut; the turn is marked failed.',
  503: 'No engine replica is available; the turn is marked failed.',
  504: 'The engine did not answer in time; the turn is marked failed.',
};

/** Documents problem responses for the given statuses. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? 'Error',
        type: ProblemDto,
        content: undefined,
      }),
    ),
  );
}
