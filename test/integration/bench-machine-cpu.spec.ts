import { machineWindow, readMachine } from '../../bench/load-lab';

/** bench:load's whole-machine CPU accounting (details.machineCpu) reads /proc as proc(5) describes it. */
describe('bench:load machine CPU accounting', () => {
  it('should find this process and the CPU it burns between two samples, under the name it is given', () => {
    const before = readMachine();
    expect(before.processes.get(process.pid)?.command).toMatch(/\S/);
    const until = process.cpuUsage().user + 300_000;
    let x = 0;
    while (process.cpuUsage().user < until) x += Math.sqrt(x + 1);
    const after = readMachine();
    const window = machineWindow(before, after, new Map([[process.pid, 'me']]));
    // /proc counts in clock ticks (10 ms): 300 ms of user time shows as at least 250.
    expect(window.byName.me).toBeGreaterThanOrEqual(250);
    expect(Object.keys(window.byName)).toContain('me');
    expect(window.busyMs).toBeGreaterThanOrEqual(window.byName.me - 20);
    expect(window.idleMs).toBeGreaterThanOrEqual(0);
    expect(x).toBeGreaterThan(0);
  });

  it('should not count a process whose pid was reused by another command as the old one', () => {
    const before = readMachine();
    const after = { ...before, processes: new Map(before.processes) };
    before.processes.set(999_999_1, { command: 'old', cpuMs: 5_000 });
    after.processes.set(999_999_1, { command: 'new', cpuMs: 40 });
    const window = machineWindow(before, after, new Map());
    expect(window.byName.new).toBe(40);
    expect(window.byName.old).toBeUndefined();
  });
});
