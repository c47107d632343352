/**
 * Reads the test API servers' audit logs (see AUDITED_USERS in test/controlplane/testenv.ts): every request of
 * one user, attributed exactly, between two marks. The logs are JSON lines of audit.k8s.io/v1 Events at level
 * Metadata with the RequestReceived stage omitted, so a request appears once at ResponseComplete, and a watch (a
 * long-running request) also at ResponseStarted when the server accepted it.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

interface AuditEvent {
  auditID?: string;
  stage?: string;
  verb?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string };
  requestURI?: string;
}

/** Byte offsets into each audit log. */
export type AuditMark = Record<string, number>;

export interface RequestCounts {
  total: number;
  /** "verb resource[/subresource]" → count, e.g. "patch configmaps", "patch resourcesyncs/status". */
  byVerbResource: Record<string, number>;
}

export class AuditLogs {
  readonly #files: Record<string, string>;

  /** `files`: cluster name → audit log path. */
  constructor(files: Record<string, string>) {
    this.#files = files;
  }

  /** The current end of every log, once the API servers stopped writing for `quietMs` (they write as they go). */
  async mark(quietMs = 500): Promise<AuditMark> {
    let last = this.#sizes();
    let stableSince = Date.now();
    const deadline = Date.now() + 30_000;
    while (Date.now() - stableSince < quietMs && Date.now() < deadline) {
      await sleep(100);
      const now = this.#sizes();
      if (Object.keys(now).some((k) => now[k] !== last[k])) {
        last = now;
        stableSince = Date.now();
      }
    }
    return last;
  }

  /** Requests of `user` between two marks, on all clusters together. */
  requests(user: string, from: AuditMark, to: AuditMark): RequestCounts {
    const counts: RequestCounts = { total: 0, byVerbResource: {} };
    for (const e of this.#events(from, to)) {
      if (e.user?.username !== user || e.stage !== "ResponseComplete") continue;
      const resource = e.objectRef?.resource ?? nonResource(e.requestURI);
      const what = `${e.verb ?? "?"} ${resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""}`;
      counts.total++;
      counts.byVerbResource[what] = (counts.byVerbResource[what] ?? 0) + 1;
    }
    return counts;
  }

  /** Watches of `user` that the servers accepted after `from` and had not ended at `to`. */
  openWatches(user: string, from: AuditMark, to: AuditMark): number {
    const open = new Set<string>();
    for (const e of this.#events(from, to)) {
      if (e.user?.username !== user || e.verb !== "watch" || !e.auditID) continue;
      if (e.stage === "ResponseStarted") open.add(e.auditID);
      else if (e.stage === "ResponseComplete") open.delete(e.auditID);
    }
    return open.size;
  }

  #sizes(): AuditMark {
    const out: AuditMark = {};
    for (const [cluster, file] of Object.entries(this.#files)) {
      try {
        out[cluster] = statSync(file).size;
      } catch {
        out[cluster] = 0;
      }
    }
    return out;
  }

  *#events(from: AuditMark, to: AuditMark): Generator<AuditEvent> {
    for (const [cluster, file] of Object.entries(this.#files)) {
      const start = from[cluster] ?? 0;
      const end = to[cluster] ?? 0;
      if (end <= start) continue;
      const buf = Buffer.alloc(end - start);
      const fd = openSync(file, "r");
      try {
        readSync(fd, buf, 0, buf.length, start);
      } finally {
        closeSync(fd);
      }
      for (const line of buf.toString("utf8").split("\n")) {
        if (line === "") continue;
        try {
          yield JSON.parse(line) as AuditEvent;
        } catch {
          // a line cut at a mark: counted in neither window
        }
      }
    }
  }
}

function nonResource(uri: string | undefined): string {
  return (uri ?? "?").split("?")[0] ?? "?";
}
