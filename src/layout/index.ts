// tensorcast/layout: canonical indexes, views, TP layouts and byte-range programs.
export { buildCanonicalIndex, indexModelFiles, parseIndexJson, type CanonicalIndex, type CanonicalTensor } from './canonical-index.js';
export { normalizeView, parseViewJson, specOfView, type ViewSpec, type NormalizedView } from './view.js';
export { tpView, modelDimsFromConfig, readModelConfig } from './tp-layout.js';
export { LLAMA_FAMILY_RULES, parseRuleSet, loadRuleSet, type TpRuleSet, type TpRule } from './tp-rules.js';
export { selectView, type Selection } from './selection.js';
export { compileProgram, programWindow, type ByteRangeProgram, type Run } from './program.js';
export { ProgramCache } from './program-cache.js';
