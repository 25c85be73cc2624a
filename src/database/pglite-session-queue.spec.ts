import { ReplyReader } from './pglite-session-queue';

/** A backend message: type byte, int32 length (itself included), body. */
function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

const commandComplete = message('C', Buffer.from('SELECT 1\0'));
const readyFor = (status: 'I' | 'T' | 'E') => message('Z', Buffer.from(status));

describe('ReplyReader', () => {
  it('should find the session idle only when the reply ends with ReadyForQuery status I', () => {
    const cases: [Buffer, boolean][] = [
      [Buffer.concat([commandComplete, readyFor('I')]), true],
      [Buffer.concat([commandComplete, readyFor('T')]), false], // in a transaction block
      [Buffer.concat([commandComplete, readyFor('E')]), false], // in a failed transaction block
      [message('1'), false], // ParseComplete: an extended-query exchange goes on until Sync
      [Buffer.alloc(0), false],
    ];
    for (const [reply, idle] of cases) {
      const sut = new ReplyReader();
      sut.push(reply);
      expect(sut.idle).toBe(idle);
    }
  });

  it('should follow messages split anywhere across the chunks PGlite streams', () => {
    // A data row whose last bytes look like a ReadyForQuery 'I' must not be taken for one.
    const row = message('D', Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 6]), Buffer.from('Z\0\0\0\x05I')]));
    const reply = Buffer.concat([row, commandComplete, readyFor('I')]);
    for (let cut = 0; cut <= reply.length; cut++) {
      const sut = new ReplyReader();
      sut.push(reply.subarray(0, cut));
      expect(sut.idle).toBe(cut === reply.length);
      sut.push(reply.subarray(cut));
      expect(sut.idle).toBe(true);
    }
    const unfinished = new ReplyReader();
    unfinished.push(Buffer.concat([commandComplete, row]));
    expect(unfinished.idle).toBe(false);
  });
});
