import { loadConfigClass } from './config.loader';
import { KnowledgeConfig } from './knowledge.config';

describe('KnowledgeConfig', () => {
  it('should read non-default values back, lists and numbers included', () => {
    const sut = loadConfigClass(KnowledgeConfig, {
      KNOWLEDGE_MAX_DOCUMENT_BYTES: '2048',
      KNOWLEDGE_MAX_FILES_PER_UPLOAD: '3',
      KNOWLEDGE_URL_ALLOWLIST: 'https://docs.example.com/a/, http://intranet/kb/',
      KNOWLEDGE_URL_TIMEOUT_MS: '500',
      KNOWLEDGE_CHUNK_TOKENS: '128',
      KNOWLEDGE_CHUNK_OVERLAP_TOKENS: '16',
      KNOWLEDGE_SEARCH_K: '7',
      KNOWLEDGE_SEARCH_CANDIDATES: '30',
      KNOWLEDGE_RRF_K: '10',
      KNOWLEDGE_RERANK_URL: 'http://rerank:8000/v1/rerank',
      KNOWLEDGE_RERANK_MODEL: 'bge-reranker',
      KNOWLEDGE_RERANK_API_KEY: 'secret',
      KNOWLEDGE_RERANK_CANDIDATES: '12',
      KNOWLEDGE_RERANK_TIMEOUT_MS: '900',
    });
    expect({ ...sut }).toEqual({
      KNOWLEDGE_MAX_DOCUMENT_BYTES: 2048,
      KNOWLEDGE_MAX_FILES_PER_UPLOAD: 3,
      KNOWLEDGE_URL_ALLOWLIST: ['https://docs.example.com/a/', 'http://intranet/kb/'],
      KNOWLEDGE_URL_TIMEOUT_MS: 500,
      KNOWLEDGE_CHUNK_TOKENS: 128,
      KNOWLEDGE_CHUNK_OVERLAP_TOKENS: 16,
      KNOWLEDGE_SEARCH_K: 7,
      KNOWLEDGE_SEARCH_CANDIDATES: 30,
      KNOWLEDGE_RRF_K: 10,
      KNOWLEDGE_RERANK_URL: 'http://rerank:8000/v1/rerank',
      KNOWLEDGE_RERANK_MODEL: 'bge-reranker',
      KNOWLEDGE_RERANK_API_KEY: 'secret',
      KNOWLEDGE_RERANK_CANDIDATES: 12,
      KNOWLEDGE_RERANK_TIMEOUT_MS: 900,
    });
  });

  it('should name a bad variable', () => {
    expect(() => loadConfigClass(KnowledgeConfig, { KNOWLEDGE_URL_ALLOWLIST: 'not a url' })).toThrow(
      /KNOWLEDGE_URL_ALLOWLIST/,
    );
    expect(() => loadConfigClass(KnowledgeConfig, { KNOWLEDGE_CHUNK_TOKENS: '4' })).toThrow(
      /KNOWLEDGE_CHUNK_TOKENS/,
    );
  });
});
