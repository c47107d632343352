/**
 * Records core/v1 Events on the objects Sinker manages, as `kubectl describe` shows them. Events are best
 * effort: a failure to record one is logged and never fails a reconcile.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { truncateMessage } from "./api-message.ts";
import type { ClusterClient, ResourceInfo } from "./client.ts";
import type { KubeObject } from "./object.ts";

export const EVENT_SOURCE = "sinker";

export interface EventRecorder {
  record(object: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}

/**
 * 16 hex digits (60 random bits) for an Event's name. From randomUUID, which draws from a pool of random bytes
 * refilled in batches: randomBytes asked the kernel for 8 bytes on every Event.
 */
function uniqueSuffix(): string {
  const u = randomUUID();
  return u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18);
}

export class ApiEventRecorder implements EventRecorder {
  private readonly client: ClusterClient;
  private readonly logger: Logger;
  private resource: Promise<ResourceInfo> | undefined;
  private readonly hostname: string;

  constructor(client: ClusterClient, logger: Logger, hostname: string) {
    this.client = client;
    this.logger = logger;
    this.hostname = hostname;
  }

  record(object: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void {
    void this.post(object, type, reason, message).catch((err: unknown) => {
      this.logger.warn(
        { err: err instanceof Error ? err.message : String(err), reason },
        "could not record event",
      );
    });
  }

  /** Creates the Event and resolves once the API server has it (`record` without waiting; used by benchmarks). */
  async post(object: KubeObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const meta = object.metadata ?? {};
    const namespace = meta.namespace ?? "default";
    if (!this.resource) this.resource = this.client.resolve("v1", "Event");
    const resource = await this.resource.catch((err: unknown) => {
      this.resource = undefined;
      throw err;
    });
    const now = new Date().toISOString();
    await this.client.create(resource, namespace, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${meta.name}.${uniqueSuffix()}`, namespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      message: truncateMessage(message),
      source: { component: EVENT_SOURCE, host: this.hostname },
      reportingComponent: EVENT_SOURCE,
      reportingInstance: this.hostname,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }
}
