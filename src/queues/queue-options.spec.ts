import { QueuesConfig } from '../config/queues.config';
import { defaultJobOptions } from './queue-options';

describe('defaultJobOptions', () => {
  it('should bound attempts, back off exponentially and keep failed jobs', () => {
    const config = Object.assign(new QueuesConfig(), { QUEUE_JOB_ATTEMPTS: 4, QUEUE_JOB_BACKOFF_MS: 250 });
    expect(defaultJobOptions(config)).toEqual({
      attempts: 4,
      backoff: { type: 'exponential', delay: 250 },
      removeOnComplete: 1000,
      removeOnFail: false,
    });
  });
});
