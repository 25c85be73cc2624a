/** Scratch databases for the suites: the one implementation the benchmarks use too (bench/scratch-database.ts). */
export { createScratchDatabase, LOCAL_POSTGRES, type ScratchDatabase } from '../../bench/scratch-database';
