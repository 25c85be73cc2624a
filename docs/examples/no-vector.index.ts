import { Injectable } from '@nestjs/common';
import type { VectorIndex, VectorIndexAvailability, VectorSpace } from '../../src/caching/vector-index';

/** No vectors at all: semantic lookups stay off with this reason; exact caching still works. */
@Injectable()
export class NoVectorIndex implements VectorIndex {
  availability(): Promise<VectorIndexAvailability> {
    return Promise.resolve({ available: false, reason: 'this deployment keeps no vectors' });
  }
  open(): Promise<VectorSpace> {
    return Promise.reject(new Error('no vector index'));
  }
  deleteEverywhere(): Promise<number> {
    return Promise.resolve(0);
  }
}
