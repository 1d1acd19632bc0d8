// The throwaway database servers moved to lab/services.ts (the demo runs PostgreSQL too).
export * from '../lab/services.js';
