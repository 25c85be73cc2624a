import { errorSerializer } from './log-redaction';

/** A database error shaped as MikroORM raises it on a rejected write (message = SQL with values + reason). */
function rejectedWrite(): Error {
  const err = new Error(
    `insert into "messages" ("content") values ('my secret diagnosis') - invalid byte sequence for encoding "UTF8": 0x00`,
  );
  return Object.assign(err, {
    name: 'DriverException',
    code: '22021',
    routine: 'report_invalid_encoding',
    severity: 'ERROR',
    detail: 'Key (content)=(my secret diagnosis) already exists.',
  });
}

describe('errorSerializer', () => {
  it('should drop the SQL, its values and the row detail of a database error by default', () => {
    const sut = errorSerializer(false);

    const line = JSON.stringify(sut(rejectedWrite()));

    expect(line).not.toContain('my secret diagnosis');
    expect(line).not.toContain('insert into');
    expect(line).toContain('22021');
    expect(line).toContain('report_invalid_encoding');
  });

  it('should keep the whole error when LOG_MESSAGE_CONTENT=true', () => {
    const sut = errorSerializer(true);

    expect(JSON.stringify(sut(rejectedWrite()))).toContain('my secret diagnosis');
  });

  it('should leave other errors as pino serializes them', () => {
    const sut = errorSerializer(false);

    expect(sut(new TypeError('boom'))).toMatchObject({ type: 'TypeError', message: 'boom' });
  });
});
