import { BatchScheduler } from './batch-scheduler';
import { AbortedError } from './timing';

describe('BatchScheduler', () => {
  it('should run at most maxNumSeqs requests and admit the waiting ones in FIFO order', async () => {
    const sut = new BatchScheduler(2);
    const admitted: string[] = [];
    const admit = (name: string): Promise<void> =>
      sut
        .admit(() => true)
        .then(() => {
          admitted.push(name);
        });

    const all = [admit('a'), admit('b'), admit('c'), admit('d')];
    await Promise.resolve();
    expect(admitted).toEqual(['a', 'b']);
    expect(sut.numWaiting).toBe(2);

    sut.release();
    await Promise.resolve();
    expect(admitted).toEqual(['a', 'b', 'c']);

    sut.release();
    await Promise.all(all);
    expect(admitted).toEqual(['a', 'b', 'c', 'd']);
    expect(sut.numRunning).toBe(2);
  });

  it('should block the queue behind a head that does not fit until resources are released', async () => {
    const sut = new BatchScheduler(8);
    let fits = false;
    const order: string[] = [];
    const head = sut.admit(() => fits).then(() => order.push('head'));
    const next = sut.admit(() => true).then(() => order.push('next'));
    await Promise.resolve();
    expect(order).toEqual([]);

    fits = true;
    sut.pump();
    await Promise.all([head, next]);

    expect(order).toEqual(['head', 'next']);
  });

  it('should drop a waiting request and admit the next when its signal aborts', async () => {
    const sut = new BatchScheduler(1);
    await sut.admit(() => true);
    const controller = new AbortController();
    const aborted = sut.admit(() => true, controller.signal);
    const next = sut.admit(() => true);

    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortedError);
    expect(sut.numWaiting).toBe(1);

    sut.release();
    await next;
    expect(sut.numRunning).toBe(1);
    expect(sut.numWaiting).toBe(0);
  });
});
