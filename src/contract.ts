/**
 * The facts TypeScript and Python share, as the server needs them (contract/contract.json, which
 * training/contract.py and scripts/lib.mjs read too): the model tiers, the graph's outputs and the
 * far-mode rule.
 */
import contract from '../contract/contract.json';

/** The model tiers a request can choose with `model=` (docs/model-contract.md). */
export const MODEL_TIERS = contract.tiers as [string, ...string[]];
export type ModelTier = (typeof MODEL_TIERS)[number];

/** The outputs an age model's graph must have (ExportWrapper.output_names in training/). */
export const REQUIRED_OUTPUTS: readonly string[] = contract.outputs;

/** A second age far from the distribution's peak (farMode): its rule, chosen on `val`. */
export const FAR_MODE: { gap: number; window: number; smooth: number; min_mass: number; reach: number } = contract.far_mode;

