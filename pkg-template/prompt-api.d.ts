// The Prompt API (Chrome's built-in `LanguageModel`) over webslm.
import type { LoadOptions } from './index.js';

export type Availability = 'unavailable' | 'downloadable' | 'downloading' | 'available';

export type LanguageModelMessageContent = string | { type: 'text'; value: string }[];

export interface LanguageModelMessage {
  role: 'system' | 'user' | 'assistant';
  content: LanguageModelMessageContent;
  /** On a last assistant message: the reply's first words, which the model continues. */
  prefix?: boolean;
}

export type LanguageModelPrompt = string | LanguageModelMessage[];

export interface LanguageModelExpected {
  type: 'text' | 'image' | 'audio';
  languages?: string[];
}

export interface LanguageModelCreateCoreOptions {
  /** webslm: the model to load (a URL, a path in Node and Deno, or any source Generator.load takes); default: installPolyfill's. */
  model?: string | URL | Blob | ArrayBuffer | Uint8Array | ReadableStream<Uint8Array>;
  /** webslm: Generator.load's options; default: installPolyfill's. */
  loadOptions?: Omit<LoadOptions, 'onProgress' | 'signal'>;
  /** webslm: the most tokens a reply takes (default 1024, and the rest of the context at most). */
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  expectedInputs?: LanguageModelExpected[];
  expectedOutputs?: LanguageModelExpected[];
}

export interface LanguageModelCreateOptions extends LanguageModelCreateCoreOptions {
  signal?: AbortSignal;
  /** Receives an EventTarget that fires `downloadprogress` events (`loaded` from 0 to 1, `total` 1). */
  monitor?: (monitor: EventTarget) => void;
  initialPrompts?: LanguageModelMessage[];
}

export interface LanguageModelPromptOptions {
  /** A JSON schema or a RegExp the reply follows. */
  responseConstraint?: object | RegExp;
  /** Leave the constraint's instruction out of the input (it is added to the last user message otherwise). */
  omitResponseConstraintInput?: boolean;
  signal?: AbortSignal;
}

export interface LanguageModelParams {
  defaultTopK: number;
  maxTopK: number;
  defaultTemperature: number;
  maxTemperature: number;
}

export class LanguageModel extends EventTarget {
  private constructor();
  static availability(options?: LanguageModelCreateCoreOptions): Promise<Availability>;
  static params(): Promise<LanguageModelParams | null>;
  static create(options?: LanguageModelCreateOptions): Promise<LanguageModel>;
  prompt(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): Promise<string>;
  promptStreaming(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): ReadableStream<string>;
  append(input: LanguageModelPrompt, options?: { signal?: AbortSignal }): Promise<void>;
  measureInputUsage(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): Promise<number>;
  measureContextUsage(input: LanguageModelPrompt, options?: LanguageModelPromptOptions): Promise<number>;
  readonly inputUsage: number;
  readonly inputQuota: number;
  readonly contextUsage: number;
  readonly contextWindow: number;
  onquotaoverflow: ((event: Event) => void) | null;
  oncontextoverflow: ((event: Event) => void) | null;
  readonly topK: number;
  readonly temperature: number;
  clone(options?: { signal?: AbortSignal }): Promise<LanguageModel>;
  destroy(): void;
}

/**
 * Sets globalThis.LanguageModel where the runtime has none (or always, with
 * `force`: Chrome's built-in one may have no model available), with what
 * create() loads by default.
 */
export function installPolyfill(defaults?: Pick<LanguageModelCreateCoreOptions, 'model' | 'loadOptions' | 'maxTokens'> & { force?: boolean }): typeof LanguageModel;
