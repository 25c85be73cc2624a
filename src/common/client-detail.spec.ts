import { DomainError } from './domain-error';
import { toProblem } from './problem.filter';

/** An engine error as inference throws it (common must not import inference). */
class EngineUnavailable extends DomainError {
  readonly code = 'EngineUnavailable';
}

describe('toProblem for engine errors', () => {
  it('should give clients a replica-free detail and drop the replica extension', () => {
    const error = new EngineUnavailable(
      'The engine at http://vllm-3.internal:8000/v1 is unreachable: connect ECONNREFUSED 10.0.0.7:8000',
      { replica: 'http://vllm-3.internal:8000/v1' },
    );

    const sut = toProblem(error, '/v1/conversations/x/turns', 'req-1');

    expect(sut.detail).not.toContain('vllm-3.internal');
    expect(sut.detail).toContain('an internal service');
    expect(sut).not.toHaveProperty('replica');
    expect(sut).toMatchObject({ status: 503, code: 'EngineUnavailable' });
  });
});
