/**
 * Splitting a watch stream into events, with bounded memory and linear time: a hostile server may send a line
 * that never ends. Chunks of the unfinished line are kept in a list (no string growing by concatenation, no
 * re-scan of what was already searched for a newline) and a line longer than `maxLineBytes` ends the watch with
 * ResponseTooLarge.
 */
import { SinkerError } from "../errors.ts";
import { isPlainObject, type KubeObject } from "./object.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  type: WatchEventType;
  /** For ERROR: a meta/v1 Status. For BOOKMARK: an object with only metadata.resourceVersion (and annotations). */
  object: KubeObject;
}

/** The longest watch line (one event, one object) accepted by default. */
export const DEFAULT_MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Splits a watch stream into JSON lines. Feed it chunks; it calls back once per complete, non-empty line.
 * A line that is not a valid watch event, or is longer than the bound, throws (the stream is then broken:
 * restart the watch).
 */
export class WatchLineDecoder {
  /** Pieces of the current, unfinished line. */
  #pending: string[] = [];
  #pendingLength = 0;
  readonly #decoder = new TextDecoder("utf-8");
  readonly #onEvent: (e: WatchEvent) => void;
  readonly #maxLine: number;

  constructor(onEvent: (e: WatchEvent) => void, maxLineBytes = DEFAULT_MAX_WATCH_LINE_BYTES) {
    this.#onEvent = onEvent;
    this.#maxLine = maxLineBytes;
  }

  write(chunk: Uint8Array | string): void {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    let from = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", from)) {
      this.#take(text.slice(from, nl));
      this.#emit();
      from = nl + 1;
    }
    if (from < text.length) this.#take(text.slice(from));
  }

  /** End of stream: a last line without a newline is still an event. */
  end(): void {
    this.#take(this.#decoder.decode());
    this.#emit();
  }

  #take(piece: string): void {
    if (piece === "") return;
    this.#pendingLength += piece.length;
    // UTF-16 length ≤ UTF-8 length, so this bound never refuses a line within the byte bound.
    if (this.#pendingLength > this.#maxLine) {
      this.#pending = [];
      this.#pendingLength = 0;
      throw new SinkerError(
        "ResponseTooLarge",
        `watch stream carried a line longer than ${this.#maxLine} bytes`,
      );
    }
    this.#pending.push(piece);
  }

  #emit(): void {
    const line = this.#pending.length === 1 ? (this.#pending[0] as string) : this.#pending.join("");
    this.#pending = [];
    this.#pendingLength = 0;
    if (line.trim() !== "") this.#onEvent(parseWatchLine(line));
  }
}

const WATCH_TYPES = new Set<string>(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

/** Parses one line of a watch stream. Throws a SinkerError (never echoing the line) when it is not an event. */
export function parseWatchLine(line: string): WatchEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new SinkerError(
      "ClusterUnreachable",
      `watch stream carried a line that is not JSON (${line.length} bytes)`,
    );
  }
  if (
    !isPlainObject(parsed) ||
    typeof parsed.type !== "string" ||
    !WATCH_TYPES.has(parsed.type) ||
    !isPlainObject(parsed.object)
  ) {
    throw new SinkerError("ClusterUnreachable", "watch stream carried a line that is not a watch event");
  }
  return { type: parsed.type as WatchEventType, object: parsed.object as KubeObject };
}
