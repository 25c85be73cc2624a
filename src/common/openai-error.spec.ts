import { isOpenAiPath, paramOf, toOpenAiError } from './openai-error';
import type { ProblemBody } from './problem.filter';

const problem = (over: Partial<ProblemBody>): ProblemBody => ({
  type: 'https://kvchat.dev/problems/X',
  title: 'Bad Request',
  status: 400,
  detail: 'detail',
  instance: '/v1/chat/completions',
  code: 'ValidationFailed',
  requestId: 'req-1',
  ...over,
});

describe('OpenAI error shape', () => {
  it.each([
    ['/v1/chat/completions', true],
    ['/v1/chat/completions?x=1', true],
    ['/v1/embeddings', true],
    ['/v1/models', true],
    ['/v1/models/kvchat-sim', true],
    ['/v1/conversations', false],
    ['/v1/conversations/1/turns', false],
    ['/v1/chat/completionsX', false],
  ])('should treat %s as an OpenAI path: %s', (url, expected) => {
    expect(isOpenAiPath(url)).toBe(expected);
  });

  it.each([
    ['temperature must not be greater than 2', 'temperature'],
    ['messages.0.role must be system, developer, user, assistant or tool', 'messages[0].role'],
    ['messages.1.tool_calls.0.function.name must be a string', 'messages[1].tool_calls[0].function.name'],
    ['property foo should not exist', 'foo'],
    ['messages.0.property audio should not exist', 'messages[0].audio'],
    ['An unexpected error occurred', null],
  ])('should name the field of "%s"', (message, param) => {
    expect(paramOf(message)).toBe(param);
  });

  it('should carry the detail as the message, the first validation field as param, and the problem in kvchat', () => {
    const body = toOpenAiError(
      problem({
        detail: 'top_p must not be greater than 1; n must be an integer',
        errors: ['top_p must not be greater than 1', 'n must be an integer'],
      }),
    );
    expect(body.error).toMatchObject({
      message: 'top_p must not be greater than 1; n must be an integer',
      type: 'invalid_request_error',
      param: 'top_p',
      code: 'validation_failed',
      kvchat: { code: 'ValidationFailed', requestId: 'req-1' },
    });
  });

  it.each([
    [401, 'Unauthorized', 'invalid_request_error', 'invalid_api_key'],
    [403, 'ScopeMissing', 'permission_error', 'scope_missing'],
    [404, 'ModelNotFound', 'invalid_request_error', 'model_not_found'],
    [429, 'RateLimitExceeded', 'rate_limit_error', 'rate_limit_exceeded'],
    [429, 'BudgetExceeded', 'insufficient_quota', 'insufficient_quota'],
    [503, 'EngineUnavailable', 'service_unavailable', 'engine_unavailable'],
    [502, 'EngineError', 'server_error', 'engine_error'],
  ])('should map %i %s to type %s and code %s', (status, code, type, openAiCode) => {
    expect(toOpenAiError(problem({ status, code })).error).toMatchObject({
      type,
      code: openAiCode,
      param: null,
    });
  });

  it('should take param from a `field` extension (size limits, cache_salt)', () => {
    const body = toOpenAiError(
      problem({ status: 413, code: 'PayloadTooLarge', field: 'messages[0].content' }),
    );
    expect(body.error.param).toBe('messages[0].content');
  });
});
