// TypeScript declarations for Switchyard's browser library: the
// `window.analytics` object once the library has loaded (before that,
// Segment's snippet queues the same calls). Shapes follow Analytics.js.

export type JSONPrimitive = string | number | boolean | null;
export type JSONValue = JSONPrimitive | JSONObject | JSONValue[];
export interface JSONObject {
  [key: string]: JSONValue | undefined;
}

/** `{All: false, Mixpanel: true}`: which destinations an event reaches. */
export type Integrations = { All?: boolean; "Segment.io"?: boolean } & Record<string, boolean | JSONObject | undefined>;

/** Per-call options. Keys other than these go into `context`. */
export interface Options {
  integrations?: Integrations;
  /** When the event happened; defaults to now. */
  timestamp?: Date | string;
  /** Overrides the visitor's anonymous id for this event. */
  anonymousId?: string;
  /** Merged into the event's context. */
  context?: JSONObject;
  /** Sent as `context.traits`. */
  traits?: JSONObject;
  [key: string]: unknown;
}

export type EventType = "track" | "identify" | "page" | "screen" | "group" | "alias";

/** An event in Segment's wire format. */
export interface SegmentEvent {
  type: EventType;
  messageId: string;
  anonymousId: string;
  userId: string | null;
  timestamp: string;
  event?: string;
  name?: string;
  category?: string;
  properties?: JSONObject;
  traits?: JSONObject;
  groupId?: string | null;
  previousId?: string;
  integrations: Integrations;
  context: JSONObject & {
    page?: { path: string; referrer: string; search: string; title: string; url: string };
    userAgent?: string;
    locale?: string;
    timezone?: string;
    library: { name: string; version: string };
    campaign?: Record<string, string>;
    consent?: { categoryPreferences: Record<string, boolean> };
  };
}

/** What plugins receive and calls resolve to: analytics-next's Context. */
export interface Context {
  event: SegmentEvent;
  /** Sets `path` (dot-separated) in the event. */
  updateEvent(path: string, value: unknown): SegmentEvent;
}

export type Callback = (ctx: Context | undefined) => void;

export interface Plugin {
  name: string;
  type: "before" | "enrichment" | "destination" | "after" | "utility";
  version: string;
  /** Consent categories a destination needs before it loads. */
  consentCategories?: string[];
  isLoaded?(): boolean;
  load?(ctx: Context, analytics: Analytics): unknown | Promise<unknown>;
  track?(ctx: Context): Context | void | Promise<Context | void>;
  identify?(ctx: Context): Context | void | Promise<Context | void>;
  page?(ctx: Context): Context | void | Promise<Context | void>;
  screen?(ctx: Context): Context | void | Promise<Context | void>;
  group?(ctx: Context): Context | void | Promise<Context | void>;
  alias?(ctx: Context): Context | void | Promise<Context | void>;
}

export interface MiddlewareInput {
  payload: { obj: SegmentEvent };
  integrations: Integrations;
  /** Passes the payload on; `null` drops the event. */
  next(payload: { obj: SegmentEvent } | null): void;
}
export type SourceMiddleware = (input: MiddlewareInput) => void;
export type DestinationMiddleware = (input: MiddlewareInput & { destination: string }) => void;

export interface User {
  id(): string | null;
  anonymousId(): string;
  traits(): JSONObject;
}

export interface Group {
  id(): string | null;
  traits(): JSONObject;
}

export interface ConsentPreferences {
  categoryPreferences: Record<string, boolean>;
}

export type EmitterEvent = EventType | "ready" | "reset" | "error";

/** Options for `analytics.load(writeKey, options)` in the snippet. */
export interface LoadOptions {
  /** Switchyard's form: send `/v1/b` batches. */
  batching?: boolean | { size?: number; bytes?: number; timeout?: number };
  /** analytics-next's form of the same. */
  integrations?: {
    "Segment.io"?: { deliveryStrategy?: { strategy: "standard" | "batching"; config?: { size?: number; timeout?: number } } };
  };
  /**
   * Consent preferences at load. A device-mode destination needs each of
   * its catalog categories (`Analytics`, `Advertising`, ...) allowed.
   */
  consent?: ConsentPreferences;
  /**
   * How long a device-mode destination's vendor script may take to load,
   * in milliseconds (10000 by default); one that takes longer is reported
   * through `on('error')` and passed over.
   */
  destinationTimeout?: number;
}

export interface Analytics {
  track(event: string, properties?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  track(event: string, callback: Callback): Promise<Context>;
  track(event: string, properties: JSONObject, callback: Callback): Promise<Context>;

  identify(userId: string | number, traits?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  identify(traits: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  identify(userId: string | number, callback: Callback): Promise<Context>;

  page(category: string, name: string, properties?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  page(name?: string, properties?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  page(properties?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  page(callback: Callback): Promise<Context>;

  screen(category: string, name: string, properties?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  screen(name?: string, properties?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;

  group(groupId: string | number, traits?: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  group(traits: JSONObject, options?: Options, callback?: Callback): Promise<Context>;
  /** With no arguments: the current group. */
  group(): Group;

  alias(userId: string | number, previousId?: string | number, options?: Options, callback?: Callback): Promise<Context>;
  alias(userId: string | number, options?: Options, callback?: Callback): Promise<Context>;

  /** Resolves once every destination has loaded, failed or timed out. */
  ready(callback?: () => void): Promise<void>;
  /** Forgets the user and group and starts a new anonymous id. */
  reset(): void;
  user(): User;
  setAnonymousId(id?: string): string;
  debug(on?: boolean): void;

  on(event: "error", listener: (error: Error & { detail?: unknown }) => void): void;
  on(event: EmitterEvent, listener: (...args: unknown[]) => void): void;
  once(event: EmitterEvent, listener: (...args: unknown[]) => void): void;
  off(event: EmitterEvent, listener?: (...args: unknown[]) => void): void;

  addSourceMiddleware(middleware: SourceMiddleware): void;
  addDestinationMiddleware(destination: string, middleware: DestinationMiddleware): void;
  register(...plugins: Plugin[]): Promise<void>;

  /** Gives or withdraws consent; destinations that now have it load. */
  consent(preferences: ConsentPreferences | Record<string, boolean>): void;

  readonly initialized: true;
  readonly VERSION: string;
}

declare global {
  interface Window {
    analytics: Analytics;
  }
}
